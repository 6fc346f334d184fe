import fs from "node:fs/promises";
import { LlmosError } from "../../errors.js";
import { withRetries } from "../pull/download.js";
import { sha256Digest, type OciDescriptor } from "./oci-manifest.js";
import { accessScope, type RegistryClient } from "./registry-client.js";

/** A blob to push: bytes in memory (small layers, the config) or a file of the store. */
export type PushSource = { bytes: Buffer } | { path: string };

/** Bytes per PATCH of a chunked upload. Default 16 MiB. */
export const DEFAULT_UPLOAD_CHUNK_BYTES = 16 * 1024 * 1024;

/** True when the registry already has the blob in `repository` (`HEAD /v2/{repo}/blobs/{digest}`). */
export async function registryHasBlob(client: RegistryClient, repository: string, digest: string): Promise<boolean> {
  const response = await client.expect(
    {
      method: "HEAD",
      path: `/v2/${repository}/blobs/${digest}`,
      scope: accessScope(repository, true),
      what: `blob ${digest}`,
      follow: true,
    },
    [404],
  );
  await response.body?.cancel();
  return response.status !== 404;
}

/** Resolves an upload `Location` (relative or absolute) and checks it with the policy. */
async function uploadLocation(client: RegistryClient, response: Response, from: URL, what: string): Promise<URL> {
  const location = response.headers.get("location");
  if (!location)
    throw new LlmosError("upstream_error", `registry ${client.options.registry} gave no upload location for ${what}`);
  const url = new URL(location, from);
  await client.options.policy(url, "redirect", from);
  return url;
}

async function readChunk(source: PushSource, start: number, length: number): Promise<Buffer> {
  if ("bytes" in source) return source.bytes.subarray(start, start + length);
  const handle = await fs.open(source.path, "r");
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, start);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * Uploads one blob the way the distribution spec's chunked upload goes: `POST .../blobs/uploads/` opens a session,
 * each `PATCH` sends a `Content-Range` chunk to the latest `Location`, and `PUT ...?digest=` closes it; the registry
 * checks the digest. A failed attempt starts a new session (retried with backoff like downloads).
 */
export async function uploadBlob(
  client: RegistryClient,
  repository: string,
  blob: OciDescriptor,
  source: PushSource,
  options: { chunkBytes?: number; onProgress?: (sent: number) => void } = {},
): Promise<void> {
  const chunkBytes = Math.max(1, options.chunkBytes ?? DEFAULT_UPLOAD_CHUNK_BYTES);
  const scope = accessScope(repository, true);
  const what = `blob ${blob.digest}`;
  await withRetries(client.options.tuning, client.options.signal, async () => {
    const base = new URL(`/v2/${repository}/blobs/uploads/`, client.base);
    const started = await client.request({ method: "POST", path: base.toString(), scope, what });
    if (started.status !== 202) throw await client.failure(started, `an upload of ${what}`);
    await started.body?.cancel();
    let location = await uploadLocation(client, started, base, what);
    let sent = 0;
    options.onProgress?.(0);
    while (sent < blob.size) {
      const chunk = await readChunk(source, sent, Math.min(chunkBytes, blob.size - sent));
      if (chunk.length === 0)
        throw new LlmosError("internal", `${what}: the local file is shorter than ${blob.size} bytes`);
      const response = await client.request({
        method: "PATCH",
        path: location.toString(),
        headers: {
          "content-type": "application/octet-stream",
          "content-range": `${sent}-${sent + chunk.length - 1}`,
          "content-length": String(chunk.length),
        },
        body: chunk,
        scope,
        what,
      });
      if (response.status !== 202) throw await client.failure(response, `a chunk of ${what}`);
      await response.body?.cancel();
      location = await uploadLocation(client, response, location, what);
      sent += chunk.length;
      options.onProgress?.(sent);
    }
    location.searchParams.set("digest", blob.digest);
    const done = await client.request({ method: "PUT", path: location.toString(), scope, what });
    if (done.status !== 201) throw await client.failure(done, `the end of the upload of ${what}`);
    await done.body?.cancel();
  });
}

/** `PUT /v2/{repo}/manifests/{reference}`; returns the manifest's digest. */
export async function putManifest(
  client: RegistryClient,
  repository: string,
  reference: string,
  bytes: Buffer,
  mediaType: string,
): Promise<string> {
  const digest = sha256Digest(bytes);
  const response = await client.expect({
    method: "PUT",
    path: `/v2/${repository}/manifests/${reference}`,
    headers: { "content-type": mediaType },
    body: bytes,
    scope: accessScope(repository, true),
    what: `the manifest ${repository}:${reference}`,
  });
  await response.body?.cancel();
  const announced = response.headers.get("docker-content-digest");
  if (announced && announced !== digest) {
    throw new LlmosError(
      "upstream_error",
      `registry ${client.options.registry} stored the manifest as ${announced}, not ${digest}`,
    );
  }
  return digest;
}
