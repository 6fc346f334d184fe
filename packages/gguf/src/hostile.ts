import { GgufValueType } from "./types.js";

/** Options of {@link largeVocabularyGguf}. */
export interface LargeVocabularyOptions {
  /** Tokens in `tokenizer.ggml.tokens` (each `t<i>`). */
  tokens: number;
  /** When given, the last token repeats the token of this id (llama.cpp would abort on such a vocabulary). */
  duplicateOf?: number;
}

/**
 * A GGUF file whose header is almost all vocabulary: a valid small llama shape with no tensors and
 * `tokenizer.ggml.tokens` of `tokens` strings. Built byte by byte (no JS array of strings), so fuzzers and tests
 * can make headers of tens of MiB cheaply: the worst case for a reader that builds every array.
 */
export function largeVocabularyGguf(options: LargeVocabularyOptions): Buffer {
  const n = options.tokens;
  const token = (i: number): string =>
    i === n - 1 && options.duplicateOf !== undefined ? `t${options.duplicateOf}` : `t${i}`;
  const kv: Array<[string, number, number | string]> = [
    ["general.architecture", GgufValueType.STRING, "llama"],
    ["llama.context_length", GgufValueType.UINT32, 2048],
    ["llama.embedding_length", GgufValueType.UINT32, 64],
    ["llama.block_count", GgufValueType.UINT32, 1],
    ["llama.feed_forward_length", GgufValueType.UINT32, 172],
    ["llama.attention.head_count", GgufValueType.UINT32, 8],
    ["tokenizer.ggml.model", GgufValueType.STRING, "llama"],
  ];
  let tokenBytes = 0;
  for (let i = 0; i < n; i++) tokenBytes += 8 + Buffer.byteLength(token(i));
  const key = "tokenizer.ggml.tokens";
  let size = 4 + 4 + 8 + 8;
  for (const [k, type, v] of kv) size += 8 + k.length + 4 + (type === GgufValueType.STRING ? 8 + String(v).length : 4);
  size += 8 + key.length + 4 + 4 + 8 + tokenBytes;
  const b = Buffer.alloc(Math.ceil(size / 32) * 32);
  let pos = 0;
  const u32 = (v: number) => (pos = b.writeUInt32LE(v, pos));
  const u64 = (v: number) => (pos = b.writeBigUInt64LE(BigInt(v), pos));
  const str = (s: string) => {
    u64(Buffer.byteLength(s));
    pos += b.write(s, pos, "utf8");
  };
  b.write("GGUF", 0, "latin1");
  pos = 4;
  u32(3);
  u64(0); // tensors
  u64(kv.length + 1);
  for (const [k, type, v] of kv) {
    str(k);
    u32(type);
    if (type === GgufValueType.STRING) str(String(v));
    else u32(Number(v));
  }
  str(key);
  u32(GgufValueType.ARRAY);
  u32(GgufValueType.STRING);
  u64(n);
  for (let i = 0; i < n; i++) str(token(i));
  return b;
}
