/**
 * A metadata value. Integers of 8-32 bits and floats are numbers; 64-bit integers are numbers when they
 * fit in a safe JS integer and bigints otherwise; arrays may nest (bounded by `maxArrayNesting`).
 */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** GGUF metadata value type ids (gguf.h `enum gguf_type`). */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** A GGUF metadata value type id. */
export type GgufValueType = (typeof GgufValueType)[keyof typeof GgufValueType];

/** A scalar (non-array) value type id. */
export type GgufScalarType = Exclude<GgufValueType, typeof GgufValueType.ARRAY>;

/**
 * The full type of a metadata value: a scalar type, or an array with its element type. For nested
 * arrays the element type is that of the first inner array (GGUF lets inner arrays differ; that is rare).
 */
export type GgufTypeInfo =
  { readonly type: GgufScalarType } | { readonly type: typeof GgufValueType.ARRAY; readonly element: GgufTypeInfo };

/** One tensor of a GGUF file. */
export interface GgufTensorInfo {
  /** Tensor name, e.g. "blk.0.attn_q.weight". */
  name: string;
  /** Dimensions in ggml order (fastest-varying first), 1 to 4 of them, each > 0. */
  dims: number[];
  /** ggml type id (see GGML_TYPES). */
  type: number;
  /** ggml type name, e.g. "Q8_0". */
  typeName: string;
  /** Absolute file offset of the tensor's data. */
  offset: number;
  /** Size of the tensor's data in bytes. */
  size: number;
  /** Number of elements (product of dims). */
  elements: number;
}

/** Bounds that a header must respect; anything above is rejected with code "limit_exceeded". */
export interface GgufLimits {
  /** Most tensors. Default 65536. */
  maxTensors: number;
  /** Most metadata key/value pairs. Default 65536. */
  maxMetadataEntries: number;
  /** Longest string (keys, values, tensor names) in bytes. Default 16 MiB. */
  maxStringLength: number;
  /** Longest metadata array. Default 16M (16 * 1024 * 1024) elements. */
  maxArrayLength: number;
  /** Deepest array nesting: 1 allows arrays of scalars only, 2 arrays of arrays. Default 2. */
  maxArrayNesting: number;
  /**
   * Largest header (magic through tensor infos) in bytes. `readGguf` measures the header (walking lengths and
   * counts, building no value) and refuses one that reaches past this before parsing it. Default 512 MiB.
   */
  maxHeaderBytes: number;
  /**
   * Arrays with more elements are not built as JS arrays: the metadata holds a `GgufArrayRef` (length,
   * element type, elements on demand) over the header bytes. Default Infinity (every array is built).
   */
  maxMaterializedArray: number;
  /** Most array elements built as JS values in one header, all arrays together; later arrays stay refs. Default Infinity. */
  maxMaterializedTotal: number;
}

/** The default {@link GgufLimits}. */
export const DEFAULT_GGUF_LIMITS: Readonly<GgufLimits> = Object.freeze({
  maxTensors: 65536,
  maxMetadataEntries: 65536,
  maxStringLength: 16 * 1024 * 1024,
  maxArrayLength: 16 * 1024 * 1024,
  maxArrayNesting: 2,
  maxHeaderBytes: 512 * 1024 * 1024,
  maxMaterializedArray: Infinity,
  maxMaterializedTotal: Infinity,
});
