import { createHash } from "node:crypto";
import { LlmosError } from "../../errors.js";

/** Manifest media types llmos reads and writes. */
export const MEDIA_TYPES = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  /** The config media type Ollama's manifests carry. */
  dockerConfig: "application/vnd.docker.container.image.v1+json",
} as const;

/** `Accept` of a manifest request: both single-manifest types, OCI first. */
export const MANIFEST_ACCEPT = `${MEDIA_TYPES.ociManifest}, ${MEDIA_TYPES.dockerManifest}`;

/** Largest manifest read (the limit registries such as distribution enforce). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** A content descriptor: what a manifest says about a blob. */
export interface OciDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** An image manifest (OCI image manifest v1 or Docker v2 schema 2: the same shape). */
export interface OciManifest {
  schemaVersion: 2;
  mediaType: string;
  config: OciDescriptor;
  layers: OciDescriptor[];
  annotations?: Record<string, string>;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** `sha256:<hex>` of bytes. */
export function sha256Digest(bytes: Buffer | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function descriptor(value: unknown, where: string, what: string): OciDescriptor {
  const d = value as OciDescriptor;
  const ok =
    typeof d === "object" &&
    d !== null &&
    typeof d.mediaType === "string" &&
    d.mediaType.length <= 255 &&
    typeof d.digest === "string" &&
    DIGEST.test(d.digest) &&
    Number.isSafeInteger(d.size) &&
    d.size >= 0;
  if (!ok) throw bad(what, `${where} is not a descriptor with a sha256 digest and a size`);
  const out: OciDescriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.annotations && typeof d.annotations === "object") out.annotations = { ...d.annotations };
  return out;
}

function bad(what: string, why: string): LlmosError {
  return new LlmosError("upstream_error", `the manifest of ${what} is not usable: ${why}`);
}

/**
 * Parses a manifest body. `contentType` is the response's media type (it wins over the body's `mediaType`, which
 * OCI manifests may omit). An index (a list of per-platform manifests) is refused: model artifacts are one manifest.
 * @throws `upstream_error` naming what is wrong.
 */
export function parseOciManifest(body: Buffer, contentType: string | null, what: string): OciManifest {
  let value: unknown;
  try {
    value = JSON.parse(body.toString("utf8"));
  } catch {
    throw bad(what, "it is not JSON");
  }
  const m = value as Partial<OciManifest> & { manifests?: unknown };
  if (typeof m !== "object" || m === null) throw bad(what, "it is not a JSON object");
  const type = (contentType ?? "").split(";")[0]!.trim() || m.mediaType || MEDIA_TYPES.ociManifest;
  if (type === MEDIA_TYPES.ociIndex || type === MEDIA_TYPES.dockerList || Array.isArray(m.manifests)) {
    throw bad(what, "it is an index of several manifests (a container image?), not a model artifact");
  }
  if (type !== MEDIA_TYPES.ociManifest && type !== MEDIA_TYPES.dockerManifest) {
    throw bad(what, `media type ${JSON.stringify(type)} is not an OCI or Docker v2 image manifest`);
  }
  if (m.schemaVersion !== 2) throw bad(what, "schemaVersion is not 2");
  if (!Array.isArray(m.layers) || m.layers.length > 1000) throw bad(what, "layers is not a list");
  return {
    schemaVersion: 2,
    mediaType: type,
    config: descriptor(m.config, "config", what),
    layers: m.layers.map((l, i) => descriptor(l, `layer ${i}`, what)),
    ...(m.annotations && typeof m.annotations === "object" ? { annotations: { ...m.annotations } } : {}),
  };
}

/** Serialises a manifest for a push: Docker v2 schema 2 by default, as Ollama's registry expects. */
export function serializeOciManifest(config: OciDescriptor, layers: OciDescriptor[], mediaType: string): Buffer {
  const manifest: OciManifest = { schemaVersion: 2, mediaType, config, layers };
  return Buffer.from(JSON.stringify(manifest));
}
