import { LlmosError } from "../../errors.js";
import type { BlobRef } from "../manifest.js";
import { parseModelName } from "../names.js";
import { DEFAULT_DOWNLOAD_TUNING, type DownloadTuning } from "../pull/download.js";
import type { BlobPuller, PullOptions, PullProgress } from "../pull/pull-types.js";
import type { ModelRecord } from "../record.js";
import { defaultOciName, formatOciReference, manifestReference, type OciReference } from "./oci-reference.js";
import { definitionFromLayers, MAX_TEXT_LAYER_BYTES, planLayers } from "./ollama-layers.js";
import { RegistryClient } from "./registry-client.js";
import { resolveRegistry } from "./registry-target.js";

export type { RegistryDefaults } from "./registry-target.js";

function cancelled(): LlmosError {
  return new LlmosError("client_closed", "pull cancelled; the partial download is kept and resumes on the next pull");
}

/**
 * Pulls a model from an OCI registry: the manifest (OCI or Docker v2, by tag or digest), the small layers into the
 * model definition (template, system, parameters, messages, license), the weights, adapters and projectors through
 * the store's resumable, shared, digest-checked downloads (a blob already stored is not downloaded again); then
 * registers the model with where it came from. Layers of unknown types are skipped with a warning.
 * @throws `invalid_reference` (refused URL), `not_found` (unknown repository or tag, naming it), `forbidden`,
 *   `upstream_error` (digest mismatch: the download is deleted; unusable manifest), `invalid_model_file`,
 *   `insufficient_storage`, `client_closed`.
 */
export async function pullFromRegistry(
  puller: BlobPuller,
  ref: OciReference,
  options: PullOptions,
): Promise<ModelRecord> {
  const store = puller.store;
  const emit = options.onProgress ?? (() => {});
  const signal = options.signal ?? new AbortController().signal;
  const tuning: DownloadTuning = { ...DEFAULT_DOWNLOAD_TUNING, ...puller.defaults.tuning, ...options.tuning };
  const doFetch = options.fetch ?? fetch;
  const target = await resolveRegistry(ref, puller.defaults.oci, options.insecure === true);
  const name = options.name ?? defaultOciName(ref, target.defaultHost);
  parseModelName(name);
  const what = formatOciReference({ ...ref, registry: target.host }, target.defaultHost);
  const client = new RegistryClient({
    registry: target.host,
    scheme: target.scheme,
    credential: target.credential,
    policy: target.policy,
    fetch: doFetch,
    signal,
    tuning,
  });
  const warn = (message: string): void => {
    store.logger?.warn({ reference: what }, message);
    emit({ status: `warning: ${message}` });
  };
  const guard = <T>(promise: Promise<T>): Promise<T> =>
    promise.catch((error: unknown) => {
      throw signal.aborted ? cancelled() : error;
    });

  signal.throwIfAborted?.();
  emit({ status: "pulling manifest" });
  const fetched = await guard(client.getManifest(ref.repository, manifestReference(ref), what));
  const plan = planLayers(fetched.manifest.layers, what);
  for (const layer of plan.unknown) {
    warn(`skipping layer ${layer.digest.slice(7, 19)} of unknown type ${layer.mediaType}`);
  }
  // Pulling a model again that has not changed upstream (same manifest) reads its definition from the store.
  const current = await store.get(name).catch(() => undefined);
  const unchanged = current?.origin?.manifestDigest === fetched.digest ? current.definition : undefined;
  const texts = [];
  for (const { role, layer } of unchanged ? [] : plan.texts) {
    emit({ status: `pulling ${layer.digest.slice(7, 19)}`, digest: layer.digest, total: layer.size, completed: 0 });
    const bytes = await guard(
      client.readBlob(ref.repository, layer, MAX_TEXT_LAYER_BYTES, `${what} ${role} layer ${layer.digest}`),
    );
    emit({
      status: `pulling ${layer.digest.slice(7, 19)}`,
      digest: layer.digest,
      total: layer.size,
      completed: layer.size,
    });
    texts.push({ role, text: bytes.toString("utf8") });
  }
  const definition = unchanged ?? definitionFromLayers(texts, what, what, warn);
  if (plan.projectors.length > 0) {
    warn("the model has a multimodal projector: it is stored with the model but llmos does not use it yet");
  }

  const releases: Array<() => void> = [];
  try {
    const blob = async (digest: string, size: number): Promise<BlobRef> => {
      const { ref: blobRef, release } = await puller.acquireBlob(digest, signal, emit, (inner, broadcast) =>
        puller.fetchBlob({
          url: client.blobUrl(ref.repository, digest),
          what: `${what} layer ${digest}`,
          scope: client.blobScope(ref.repository),
          hub: false,
          expectedDigest: digest,
          expectedSize: size,
          fetch: doFetch,
          tuning,
          signal: inner,
          emit: broadcast,
          label: digest,
        }),
      );
      releases.push(release);
      return blobRef;
    };
    const model = await blob(plan.model.digest, plan.model.size);
    const adapters: BlobRef[] = [];
    for (const a of plan.adapters) adapters.push(await blob(a.digest, a.size));
    const projectors: BlobRef[] = [];
    for (const p of plan.projectors) projectors.push(await blob(p.digest, p.size));
    emit({ status: "writing manifest" });
    const record = await store.register(name, {
      model,
      adapters,
      projectors,
      definition,
      origin: {
        registry: target.host,
        repository: ref.repository,
        ...(ref.tag !== undefined ? { tag: ref.tag } : {}),
        manifestDigest: fetched.digest,
        mediaType: fetched.manifest.mediaType,
      },
    });
    emit({ status: "success" } satisfies PullProgress);
    return record;
  } finally {
    for (const release of releases) release();
  }
}
