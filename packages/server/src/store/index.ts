/** The model store: content-addressed GGUF blobs, manifests per `name:tag`, pulls and model definitions. */
export { ModelStore } from "./model-store.js";
export type { ModelLease, ModelStoreOptions, RemoveResult } from "./model-store.js";
export type {
  BlobSource,
  CreateTarget,
  ModelHolder,
  ModelRegistrar,
  PullTarget,
  RegisterSpec,
  StoreLogger,
} from "./registrar.js";
export type { TempBlob } from "./blob-files.js";
export type { DiskUsage, GcReport, VerifyReport } from "./maintenance.js";
export { toModelDetails, toModelInfo, toModelSummary, renderRecordModelfile } from "./record.js";
export type { BlobFile, ModelInfoOptions, ModelRecord } from "./record.js";
export type { DefinitionMessage, ModelDefinition, ParameterValue } from "./definition.js";
export { emptyDefinition } from "./definition.js";
export type { BlobRef, Manifest, QuantizationRecord } from "./manifest.js";
export { manifestBlobs, parseManifest, serializeManifest } from "./manifest.js";
export { adoptDerivedFile, commitLooseBlob, derivedFilePath } from "./derived-file.js";
export { ensureFreeSpace, freeBytes } from "./disk-space.js";
export { readThroughPageCache } from "./read-ahead.js";
export { canonicalModelName, DEFAULT_TAG, formatModelName, NAME_RULES, parseModelName } from "./names.js";
export type { ModelName } from "./names.js";
export { hashFile, isDigest, normalizeDigest } from "./digest.js";
export { renderModelfile } from "./modelfile/render.js";
export { blobReference, createModel, specFromModelfile } from "./create.js";
export type { CreateOptions, CreateProgress, CreateSpec } from "./create.js";
export { parseModelfile, MESSAGE_ROLES } from "./modelfile/parse.js";
export type { ParsedModelfile } from "./modelfile/parse.js";
export { PARAMETER_NAMES, PARAMETER_SPECS, validateParameters } from "./modelfile/parameters.js";
export { Puller } from "./pull/pull.js";
export type { FetchBlobJob, PullDefaults, PullOptions, PullProgress } from "./pull/pull.js";
export { DEFAULT_DOWNLOAD_TUNING } from "./pull/download.js";
export type { DownloadTuning } from "./pull/download.js";
export { parsePullReference, defaultNameFor } from "./pull/reference.js";
export { PullUrlPolicy, classifyAddress, type AddressClass, type FetchHop, type UrlPolicy } from "./pull/url-policy.js";
export { GgufChecker, STORE_GGUF_LIMITS } from "./gguf-checker.js";
export type { GgufInspection } from "./gguf-check.js";
export type { PullReference } from "./pull/reference.js";
export { progressStream } from "./progress-stream.js";
export { parseOciReference, defaultOciName, OLLAMA_REGISTRY } from "./registry/oci-reference.js";
export type { OciReference } from "./registry/oci-reference.js";
export type { PushOptions, PushProgress, PushResult } from "./registry/registry-push.js";
export type { RegistryDefaults } from "./registry/registry-target.js";
export type { CredentialSources, RegistryCredential } from "./registry/credentials.js";
