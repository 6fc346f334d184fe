import { llamaFileTypeName } from "./ggml-types.js";
import type { GgufFile } from "./gguf-file.js";
import { GgufArrayRef, isArrayValue, type GgufMetadataValue } from "./values.js";

/** The facts about a model that llmos shows and plans with, derived from a {@link GgufFile}. */
export interface GgufSummary {
  /** general.architecture, or "unknown". */
  architecture: string;
  /** general.name when present. */
  name?: string;
  /** Sum of all tensors' element counts. */
  parameterCount: number;
  /** Human label of parameterCount: "260K", "42M", "6.7B" (one decimal below 10 of a unit). */
  parameterSize: string;
  /**
   * Quantization: general.file_type as llama.cpp's short ftype name ("F32", "F16", "Q8_0", "Q4_K_M");
   * without a known file type, the name of the tensor type holding the most bytes.
   */
  quantization: string;
  /** general.file_type, or null when absent. */
  fileType: number | null;
  /** `<arch>.context_length` (training context). */
  contextLength: number | null;
  /** `<arch>.embedding_length`. */
  embeddingLength: number | null;
  /** `<arch>.block_count`. */
  blockCount: number | null;
  /** `<arch>.attention.head_count`. */
  headCount: number | null;
  /** `<arch>.attention.head_count_kv`, defaulting to headCount as llama.cpp does. */
  headCountKv: number | null;
  /** `<arch>.feed_forward_length`. */
  feedForwardLength: number | null;
  /** Length of tokenizer.ggml.tokens, else `<arch>.vocab_size`. */
  vocabSize: number | null;
  /** tokenizer.chat_template when present. */
  chatTemplate?: string;
  /** tokenizer.ggml.bos_token_id when present. */
  bosTokenId?: number;
  /** tokenizer.ggml.eos_token_id when present. */
  eosTokenId?: number;
  /** Sum of tensor data sizes in bytes. */
  tensorBytes: number;
  /**
   * KV-cache bytes per token of context with an f16 cache:
   * blockCount * headCountKv * (keyLength + valueLength) * 2 bytes, where keyLength and valueLength are
   * `<arch>.attention.key_length` / `value_length` or else embeddingLength / headCount. That equals
   * 2 (K and V) * blockCount * headCountKv * headDim * 2 bytes. Null when the shape is unknown.
   */
  kvCacheBytesPerToken: number | null;
}

function num(v: GgufMetadataValue | undefined): number | null {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "bigint") return Number(v);
  return null;
}

/** Formats a parameter count as "260K", "42M", "6.7B". */
export function formatParameterCount(n: number): string {
  const units: [number, string][] = [
    [1e12, "T"],
    [1e9, "B"],
    [1e6, "M"],
    [1e3, "K"],
  ];
  for (const [scale, unit] of units) {
    if (n >= scale) {
      const v = n / scale;
      const text = v < 10 ? (Math.round(v * 10) / 10).toString() : Math.round(v).toString();
      return `${text}${unit}`;
    }
  }
  return String(n);
}

/** Derives a {@link GgufSummary} from a validated file. Missing keys become null (or are omitted). */
export function summarizeGguf(file: GgufFile): GgufSummary {
  const md = file.metadata;
  const get = (key: string): GgufMetadataValue | undefined =>
    Object.prototype.hasOwnProperty.call(md, key) ? md[key] : undefined;
  const archValue = get("general.architecture");
  const architecture = typeof archValue === "string" && archValue.length > 0 ? archValue : "unknown";
  const a = (key: string): number | null => num(get(`${architecture}.${key}`));

  let parameterCount = 0;
  let tensorBytes = 0;
  const bytesByType = new Map<string, number>();
  for (const t of file.tensors) {
    parameterCount += t.elements;
    tensorBytes += t.size;
    bytesByType.set(t.typeName, (bytesByType.get(t.typeName) ?? 0) + t.size);
  }

  const fileType = num(get("general.file_type"));
  let quantization = fileType === null ? undefined : llamaFileTypeName(fileType);
  if (quantization === undefined) {
    let best = "unknown";
    let bestBytes = -1;
    for (const [name, bytes] of bytesByType) {
      if (bytes > bestBytes) [best, bestBytes] = [name, bytes];
    }
    quantization = best;
  }

  const embeddingLength = a("embedding_length");
  const blockCount = a("block_count");
  const headCount = a("attention.head_count");
  const headCountKv = a("attention.head_count_kv") ?? headCount;
  const tokens = get("tokenizer.ggml.tokens");
  const vocabSize = isArrayValue(tokens) ? tokens.length : a("vocab_size");

  const headDim = embeddingLength !== null && headCount ? embeddingLength / headCount : null;
  const keyLength = a("attention.key_length") ?? headDim;
  const valueLength = a("attention.value_length") ?? headDim;
  const kvCacheBytesPerToken =
    blockCount !== null && headCountKv !== null && keyLength !== null && valueLength !== null
      ? blockCount * headCountKv * (keyLength + valueLength) * 2
      : null;

  const summary: GgufSummary = {
    architecture,
    parameterCount,
    parameterSize: formatParameterCount(parameterCount),
    quantization,
    fileType,
    contextLength: a("context_length"),
    embeddingLength,
    blockCount,
    headCount,
    headCountKv,
    feedForwardLength: a("feed_forward_length"),
    vocabSize,
    tensorBytes,
    kvCacheBytesPerToken,
  };
  const name = get("general.name");
  if (typeof name === "string") summary.name = name;
  const template = get("tokenizer.chat_template");
  if (typeof template === "string") summary.chatTemplate = template;
  const bos = num(get("tokenizer.ggml.bos_token_id"));
  if (bos !== null) summary.bosTokenId = bos;
  const eos = num(get("tokenizer.ggml.eos_token_id"));
  if (eos !== null) summary.eosTokenId = eos;
  return summary;
}

/** A JSON-safe metadata value for display. */
export type GgufDisplayValue = number | boolean | string | GgufDisplayValue[];

/**
 * Metadata ready for display or JSON: arrays longer than `maxArray` (and arrays the reader left unparsed) become
 * `"[32000 items]"`, bigints become decimal strings, non-finite floats become strings ("NaN", "Infinity"). Once
 * `maxStringChars` characters of strings are shown, longer strings become `"[N characters]"`, so a hostile header
 * cannot make the display as large as the header.
 */
export function metadataForDisplay(
  file: GgufFile,
  maxArray = 16,
  maxStringChars = Infinity,
): Record<string, GgufDisplayValue> {
  let chars = 0;
  const show = (v: GgufMetadataValue): GgufDisplayValue => {
    if (typeof v === "bigint") return v.toString();
    if (typeof v === "number" && !Number.isFinite(v)) return String(v);
    if (v instanceof GgufArrayRef) return `[${v.length} items]`;
    if (Array.isArray(v)) return v.length > maxArray ? `[${v.length} items]` : v.map(show);
    if (typeof v === "string") {
      chars += v.length;
      if (chars > maxStringChars && v.length > 64) return `[${v.length} characters]`;
    }
    return v;
  };
  const out: Record<string, GgufDisplayValue> = {};
  for (const key of Object.keys(file.metadata)) {
    // defineProperty keeps a hostile "__proto__" key as plain data.
    Object.defineProperty(out, key, {
      value: show(file.metadata[key]!),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
