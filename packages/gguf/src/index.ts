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
  type GgufLimits,
  type GgufScalarType,
  type GgufTensorInfo,
  type GgufTypeInfo,
  type GgufValue,
} from "./types.js";
export type { GgufFile } from "./gguf-file.js";
export { parseGgufBuffer, readGguf } from "./reader.js";
export { GgufArrayRef, isArrayValue, materialize, type GgufMetadataValue } from "./values.js";
export { findDuplicateToken, type DuplicateToken } from "./token-uniqueness.js";
export {
  formatParameterCount,
  metadataForDisplay,
  summarizeGguf,
  type GgufDisplayValue,
  type GgufSummary,
} from "./summary.js";
export { createPrng, mutateGguf } from "./fuzz.js";
export { locateGgufFields, type GgufField, type GgufFieldKind } from "./header-fields.js";
export { largeVocabularyGguf, type LargeVocabularyOptions } from "./hostile.js";
export {
  GgufWriter,
  inferGgufType,
  typed,
  typedArray,
  writeGguf,
  type GgufMetadataInput,
  type GgufTensorData,
  type GgufTensorInput,
  type GgufTypedValue,
  type GgufWriteInput,
  type GgufWriteOptions,
} from "./writer.js";
export {
  Q8_0_BLOCK,
  Q8_0_BLOCK_BYTES,
  decodeQ8_0,
  encodeF16,
  encodeF32,
  encodeQ8_0,
  f16BitsToF32,
  f32ToF16Bits,
} from "./encode.js";
export { BYTE_VOCAB_MIN, TokenType, byteTokenizerMetadata, copyTokenizerMetadata } from "./tokenizer-vocab.js";
export {
  SYNTH_SHAPES,
  standardShape,
  synthesizeLlamaModel,
  type LlamaShape,
  type SynthShapeName,
  type SynthWeightType,
} from "./synth.js";
export { ensureSynthModels, type EnsureSynthModelsOptions, type EnsuredSynthModel } from "./synth-cache.js";
export { validateModelMetadata } from "./model-check.js";
export {
  imatrixShapes,
  imatrixWeights,
  readImatrix,
  writeImatrix,
  type Imatrix,
  type ImatrixEntry,
} from "./imatrix.js";
export { QUANTIZE_TARGETS, quantizeTarget, quantizeTargetNames, type QuantizeTarget } from "./quantize-targets.js";
export { checkLlamaAsserts, LLAMA_MIN_ALIGNMENT, LLAMA_TOKENIZER_MODELS } from "./llama-asserts.js";
export { rewriteGguf, rewriteGgufBuffer, type GgufMetadataEdits } from "./rewrite.js";
