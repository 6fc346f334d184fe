import { LlmosError } from "../../errors.js";
import { DEFAULT_DOWNLOAD_TUNING, type DownloadTuning } from "../pull/download.js";
import type { ModelHolder } from "../registrar.js";
import type { ModelRecord } from "../record.js";
import { MEDIA_TYPES, serializeOciManifest, sha256Digest, type OciDescriptor } from "./oci-manifest.js";
import { formatOciReference, manifestReference, parseOciReference } from "./oci-reference.js";
import { OLLAMA_MEDIA_TYPES, textLayersOf } from "./ollama-layers.js";
import { RegistryClient } from "./registry-client.js";
import { resolveRegistry, type RegistryDefaults } from "./registry-target.js";
import { putManifest, registryHasBlob, uploadBlob, type PushSource } from "./registry-upload.js";

/** One progress event of a push, in Ollama's shape. */
export interface PushProgress {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}

/** Options of a push. */
export interface PushOptions {
  /** Speak plain http to the registry; the URL policy still decides. */
  insecure?: boolean;
  onProgress?: (event: PushProgress) => void;
  signal?: AbortSignal;
  fetch?: typeof fetch;
  tuning?: Partial<DownloadTuning>;
}

/** What a push did. */
export interface PushResult {
  /** `registry/repository:tag` pushed to. */
  reference: string;
  /** `sha256:<hex>` of the manifest pushed. */
  manifestDigest: string;
}

/** Ollama's image config for a model: what its registry and clients read (family, size, quantization). */
function configBlob(record: ModelRecord, layers: OciDescriptor[]): Buffer {
  const s = record.summary;
  return Buffer.from(
    JSON.stringify({
      model_format: "gguf",
      model_family: s.architecture,
      model_families: [s.architecture],
      model_type: s.parameterSize,
      file_type: s.quantization,
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
    }),
  );
}

/** The layers of a model in Ollama's layout, with where each one's bytes are. */
function layersOf(record: ModelRecord): Array<{ layer: OciDescriptor; source: PushSource }> {
  const weightsSize = record.size - [...record.adapters, ...record.projectors].reduce((n, b) => n + b.size, 0);
  const out: Array<{ layer: OciDescriptor; source: PushSource }> = [
    {
      layer: { mediaType: OLLAMA_MEDIA_TYPES.model, digest: record.digest, size: weightsSize },
      source: { path: record.modelPath },
    },
  ];
  for (const a of record.adapters) {
    out.push({
      layer: { mediaType: OLLAMA_MEDIA_TYPES.adapter, digest: a.digest, size: a.size },
      source: { path: a.path },
    });
  }
  for (const p of record.projectors) {
    out.push({
      layer: { mediaType: OLLAMA_MEDIA_TYPES.projector, digest: p.digest, size: p.size },
      source: { path: p.path },
    });
  }
  for (const { role, bytes } of textLayersOf(record.definition)) {
    out.push({
      layer: { mediaType: OLLAMA_MEDIA_TYPES[role], digest: sha256Digest(bytes), size: bytes.length },
      source: { bytes },
    });
  }
  return out;
}

/**
 * Pushes a stored model to an OCI registry in Ollama's layer layout (weights, adapters, projectors, template,
 * system, parameters, messages, license; an Ollama image config; a Docker v2 schema 2 manifest), so that `llmos pull`
 * and `ollama pull` can fetch it. Blobs the registry has are not sent again.
 * @throws `model_not_found`, `invalid_reference`, `forbidden` (the registry refused: credentials), `upstream_error`.
 */
export async function pushToRegistry(
  store: ModelHolder,
  defaults: RegistryDefaults | undefined,
  name: string,
  reference: string,
  options: PushOptions = {},
): Promise<PushResult> {
  const ref = parseOciReference(reference);
  if (ref.digest !== undefined) {
    throw new LlmosError("invalid_reference", `push to a tag, not a digest: ${reference}`, { reference });
  }
  const emit = options.onProgress ?? (() => {});
  const signal = options.signal ?? new AbortController().signal;
  const tuning: DownloadTuning = { ...DEFAULT_DOWNLOAD_TUNING, ...options.tuning };
  const lease = await store.acquire(name);
  try {
    const target = await resolveRegistry(ref, defaults, options.insecure === true);
    const client = new RegistryClient({
      registry: target.host,
      scheme: target.scheme,
      credential: target.credential,
      policy: target.policy,
      fetch: options.fetch ?? fetch,
      signal,
      tuning,
    });
    emit({ status: "retrieving manifest" });
    const blobs = layersOf(lease.record);
    const config = configBlob(
      lease.record,
      blobs.map((b) => b.layer),
    );
    const configLayer: OciDescriptor = {
      mediaType: MEDIA_TYPES.dockerConfig,
      digest: sha256Digest(config),
      size: config.length,
    };
    for (const { layer, source } of [...blobs, { layer: configLayer, source: { bytes: config } }]) {
      const status = `pushing ${layer.digest.slice(7, 19)}`;
      const progress = (completed: number): void =>
        emit({ status, digest: layer.digest, total: layer.size, completed });
      if (await registryHasBlob(client, ref.repository, layer.digest)) {
        progress(layer.size);
        continue;
      }
      await uploadBlob(client, ref.repository, layer, source, {
        ...(defaults?.uploadChunkBytes ? { chunkBytes: defaults.uploadChunkBytes } : {}),
        onProgress: progress,
      });
    }
    emit({ status: "pushing manifest" });
    const bytes = serializeOciManifest(
      configLayer,
      blobs.map((b) => b.layer),
      MEDIA_TYPES.dockerManifest,
    );
    const manifestDigest = await putManifest(
      client,
      ref.repository,
      manifestReference(ref),
      bytes,
      MEDIA_TYPES.dockerManifest,
    );
    emit({ status: "success" });
    return { reference: formatOciReference({ ...ref, registry: target.host }, target.defaultHost), manifestDigest };
  } catch (error) {
    if (signal.aborted) throw new LlmosError("client_closed", "push cancelled");
    throw error;
  } finally {
    lease.release();
  }
}
