/**
 * ggml tensor types and llama.cpp file types, as defined by the llama.cpp release bundled with
 * node-llama-cpp 3.21.1 (ggml.h `enum ggml_type`, ggml.c `type_traits`, ggml-common.h block structs,
 * llama.h `enum llama_ftype`). Block and type sizes were measured with `sizeof` on those structs.
 */

/** Block size (elements per block) and type size (bytes per block) of one ggml tensor type. */
export interface GgmlTypeInfo {
  /** Numeric id as stored in GGUF tensor infos. */
  readonly id: number;
  /** Upper-case name, e.g. "Q4_K" (llama.cpp prints it lower-case: "q4_K"). */
  readonly name: string;
  /** Elements per block; the first dimension of a tensor must be a multiple of it. */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
  /** True for block-quantized types. */
  readonly quantized: boolean;
}

const T = (id: number, name: string, blockSize: number, typeSize: number, quantized: boolean): GgmlTypeInfo =>
  Object.freeze({ id, name, blockSize, typeSize, quantized });

/**
 * Every ggml type that may appear in a GGUF file, by id. Ids 4, 5 (Q4_2, Q4_3), 31-33 (Q4_0_4_4 ...) and
 * 36-38 (IQ4_NL_4_4 ...) were removed from llama.cpp and are rejected, as llama.cpp does.
 */
export const GGML_TYPES: ReadonlyMap<number, GgmlTypeInfo> = new Map(
  [
    T(0, "F32", 1, 4, false),
    T(1, "F16", 1, 2, false),
    T(2, "Q4_0", 32, 18, true),
    T(3, "Q4_1", 32, 20, true),
    T(6, "Q5_0", 32, 22, true),
    T(7, "Q5_1", 32, 24, true),
    T(8, "Q8_0", 32, 34, true),
    T(9, "Q8_1", 32, 36, true),
    T(10, "Q2_K", 256, 84, true),
    T(11, "Q3_K", 256, 110, true),
    T(12, "Q4_K", 256, 144, true),
    T(13, "Q5_K", 256, 176, true),
    T(14, "Q6_K", 256, 210, true),
    T(15, "Q8_K", 256, 292, true),
    T(16, "IQ2_XXS", 256, 66, true),
    T(17, "IQ2_XS", 256, 74, true),
    T(18, "IQ3_XXS", 256, 98, true),
    T(19, "IQ1_S", 256, 50, true),
    T(20, "IQ4_NL", 32, 18, true),
    T(21, "IQ3_S", 256, 110, true),
    T(22, "IQ2_S", 256, 82, true),
    T(23, "IQ4_XS", 256, 136, true),
    T(24, "I8", 1, 1, false),
    T(25, "I16", 1, 2, false),
    T(26, "I32", 1, 4, false),
    T(27, "I64", 1, 8, false),
    T(28, "F64", 1, 8, false),
    T(29, "IQ1_M", 256, 56, true),
    T(30, "BF16", 1, 2, false),
    T(34, "TQ1_0", 256, 54, true),
    T(35, "TQ2_0", 256, 66, true),
    T(39, "MXFP4", 32, 17, true),
    T(40, "NVFP4", 64, 36, true),
    T(41, "Q1_0", 128, 18, true),
    T(42, "Q2_0", 64, 18, true),
  ].map((t) => [t.id, t]),
);

/** Ids of the ggml types used by this package's writer. */
export const GgmlType = { F32: 0, F16: 1, Q8_0: 8 } as const;

/** The {@link GgmlTypeInfo} of a type id, or undefined for unknown and removed types. */
export function ggmlTypeInfo(id: number): GgmlTypeInfo | undefined {
  return GGML_TYPES.get(id);
}

/**
 * Short names of llama.cpp file types (`general.file_type`, `enum llama_ftype`), in the form users know
 * from file names ("Q4_K_M"). llama.cpp's own long names are e.g. "Q4_K - Medium".
 */
export const LLAMA_FILE_TYPES: ReadonlyMap<number, string> = new Map([
  [0, "F32"],
  [1, "F16"],
  [2, "Q4_0"],
  [3, "Q4_1"],
  [4, "Q4_1_SOME_F16"],
  [7, "Q8_0"],
  [8, "Q5_0"],
  [9, "Q5_1"],
  [10, "Q2_K"],
  [11, "Q3_K_S"],
  [12, "Q3_K_M"],
  [13, "Q3_K_L"],
  [14, "Q4_K_S"],
  [15, "Q4_K_M"],
  [16, "Q5_K_S"],
  [17, "Q5_K_M"],
  [18, "Q6_K"],
  [19, "IQ2_XXS"],
  [20, "IQ2_XS"],
  [21, "Q2_K_S"],
  [22, "IQ3_XS"],
  [23, "IQ3_XXS"],
  [24, "IQ1_S"],
  [25, "IQ4_NL"],
  [26, "IQ3_S"],
  [27, "IQ3_M"],
  [28, "IQ2_S"],
  [29, "IQ2_M"],
  [30, "IQ4_XS"],
  [31, "IQ1_M"],
  [32, "BF16"],
  [36, "TQ1_0"],
  [37, "TQ2_0"],
  [38, "MXFP4_MOE"],
  [39, "NVFP4"],
  [40, "Q1_0"],
  [41, "Q2_0"],
]);

/** The short name of a llama.cpp file type number, or undefined when unknown. */
export function llamaFileTypeName(fileType: number): string | undefined {
  return LLAMA_FILE_TYPES.get(fileType);
}

/**
 * Bytes of a tensor of `elements` elements of a type (elements must be a multiple of the block size).
 * Uses BigInt so that hostile shapes cannot overflow silently.
 */
export function ggmlTensorBytes(info: GgmlTypeInfo, elements: bigint): bigint {
  return (elements / BigInt(info.blockSize)) * BigInt(info.typeSize);
}
