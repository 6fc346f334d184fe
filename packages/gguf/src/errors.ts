/**
 * Stable codes of {@link GgufError}. Callers switch on the code; the message is for humans and names
 * exactly what is wrong (which key or tensor, which number, which limit).
 */
export type GgufErrorCode =
  /** The file does not start with the bytes "GGUF". */
  | "bad_magic"
  /** The GGUF version is not 2 or 3. */
  | "unsupported_version"
  /** The file (or buffer) ends before the header does. */
  | "truncated"
  /** A count, length, nesting depth or the header size is above a {@link GgufLimits} bound. */
  | "limit_exceeded"
  /** An unknown metadata value type or ggml tensor type, or a value of the wrong type for its key. */
  | "bad_type"
  /** A tensor's name or shape is invalid (dims, element count, row not a multiple of the block size). */
  | "bad_tensor"
  /** A tensor's data lies (partly) outside the file. */
  | "out_of_range"
  /** Two tensors' data ranges overlap. */
  | "overlap"
  /** A metadata key or tensor name appears twice. */
  | "duplicate"
  /** general.alignment is not a power of two, or a tensor offset is not aligned. */
  | "bad_alignment"
  /** Model metadata that would crash or mislead llama.cpp (see validateModelMetadata). */
  | "bad_metadata"
  /** The file could not be opened or read (the `cause` holds the system error). */
  | "io";

/** Every {@link GgufErrorCode}, for iteration in tests and mappings. */
export const GGUF_ERROR_CODES: readonly GgufErrorCode[] = [
  "bad_magic",
  "unsupported_version",
  "truncated",
  "limit_exceeded",
  "bad_type",
  "bad_tensor",
  "out_of_range",
  "overlap",
  "duplicate",
  "bad_alignment",
  "bad_metadata",
  "io",
];

/** A GGUF file failed validation (or could not be read). */
export class GgufError extends Error {
  readonly code: GgufErrorCode;

  constructor(code: GgufErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "GgufError";
    this.code = code;
  }
}

/** True when `value` is a {@link GgufError}, optionally with the given code. */
export function isGgufError(value: unknown, code?: GgufErrorCode): value is GgufError {
  return value instanceof GgufError && (code === undefined || value.code === code);
}
