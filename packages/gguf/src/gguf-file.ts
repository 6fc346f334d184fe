import type { GgufTensorInfo, GgufTypeInfo } from "./types.js";
import type { GgufMetadataValue } from "./values.js";

/** A parsed and validated GGUF header. */
export interface GgufFile {
  /** GGUF version (2 or 3). */
  version: number;
  /**
   * Metadata by key (a null-prototype object: keys such as "__proto__" are plain data). Arrays above the
   * `maxMaterializedArray` / `maxMaterializedTotal` limits are `GgufArrayRef`s instead of JS arrays.
   */
  metadata: Record<string, GgufMetadataValue>;
  /** The stored type of each metadata value, by key (lets a writer reproduce values exactly). */
  metadataTypes: Record<string, GgufTypeInfo>;
  /** Tensors in file order. */
  tensors: GgufTensorInfo[];
  /** Data alignment in bytes (general.alignment, default 32). */
  alignment: number;
  /** Absolute offset of the data section (the header's end rounded up to `alignment`). */
  dataOffset: number;
  /** Size of the file (or of the buffer's file) in bytes. */
  fileSize: number;
  /** Bytes of header (magic through the last tensor info), before alignment padding. */
  headerBytes: number;
}
