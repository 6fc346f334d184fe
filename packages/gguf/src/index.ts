export { GgufError, GGUF_ERROR_CODES, isGgufError, type GgufErrorCode } from "./errors.js";
export {
  GGML_TYPES,
  GgmlType,
  LLAMA_FILE_TYPES,
  ggmlTensorBytes,
  ggmlTypeInfo,
  llamaFileTypeName,
  type GgmlTypeInfo,
} from "./ggml-types.js";
export {
  DEFAULT_GGUF_LIMITS,
  GgufValueType,
  type GgufFile,
  type GgufLimits,
  type GgufScalarType,
  type GgufTensorInfo,
  type GgufTypeInfo,
  type GgufValue,
} from "./types.js";
export { parseGgufBuffer, readGguf } from "./reader.js";
export {
  formatParameterCount,
  metadataForDisplay,
  summarizeGguf,
  type GgufDisplayValue,
  type GgufSummary,
} from "./summary.js";
export {
  createPrng,
  locateGgufFields,
  mutateGguf,
  type GgufField,
  type GgufFieldKind,
} from "./fuzz.js";
