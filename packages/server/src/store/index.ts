/** The model store: content-addressed GGUF blobs, manifests per `name:tag`, pulls and model definitions. */
export { ModelStore } from "./model-store.js";
export type {
  BlobSource,
  DiskUsage,
  GcReport,
  ModelLease,
  ModelStoreOptions,
  RemoveResult,
  StoreLogger,
  VerifyReport,
} from "./model-store.js";
export { toModelDetails, toModelInfo, toModelSummary, renderRecordModelfile } from "./record.js";
export type { BlobFile, ModelInfoOptions, ModelRecord } from "./record.js";
export type { DefinitionMessage, ModelDefinition, ParameterValue } from "./definition.js";
export { emptyDefinition } from "./definition.js";
export type { BlobRef, Manifest } from "./manifest.js";
export { canonicalModelName, DEFAULT_TAG, formatModelName, NAME_RULES, parseModelName } from "./names.js";
export type { ModelName } from "./names.js";
export { isDigest, normalizeDigest } from "./digest.js";
export { renderModelfile } from "./modelfile/render.js";
