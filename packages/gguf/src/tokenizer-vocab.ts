import { readGguf } from "./reader.js";
import { materialize } from "./values.js";
import { GgufValueType } from "./types.js";
import { typedArray, typed, type GgufTypedValue } from "./writer.js";

/** SentencePiece token types as llama.cpp reads them (tokenizer.ggml.token_type). */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** Smallest vocabulary of the byte tokenizer: <unk>, <s>, </s> and 256 byte tokens. */
export const BYTE_VOCAB_MIN = 3 + 256;

/** The SentencePiece word-boundary marker that stands for a space. */
const SPACE = "\u2581";
const BASE_CHARS = [
  SPACE,
  ..."etaoinshrdlucmfwypvbgkjqxz",
  ..."ETAOINSHRDLUCMFWYPVBGKJQXZ",
  ..."0123456789",
  ...".,!?'\"-:;()",
];

/** Deterministic filler pieces: single characters, then pairs, then triples of BASE_CHARS. */
function* fillerPieces(): Generator<string> {
  for (const a of BASE_CHARS) yield a;
  for (const a of BASE_CHARS) for (const b of BASE_CHARS) yield a + b;
  for (const a of BASE_CHARS) for (const b of BASE_CHARS) for (const c of BASE_CHARS) yield a + b + c;
}

/**
 * tokenizer.* metadata of a SentencePiece-style ("llama") byte-fallback vocabulary of `vocab` tokens:
 * <unk>=0, <s>=1 (BOS), </s>=2 (EOS), <0x00>..<0xFF> (ids 3..258), then filler pieces (characters, pairs,
 * triples; "▁" marks a space) with decreasing scores. Any text tokenizes: unknown characters fall back to
 * byte tokens.
 */
export function byteTokenizerMetadata(vocab: number): Record<string, GgufTypedValue> {
  if (!Number.isInteger(vocab) || vocab < BYTE_VOCAB_MIN) {
    throw new RangeError(`byte tokenizer needs a vocabulary of at least ${BYTE_VOCAB_MIN} tokens, got ${vocab}`);
  }
  const tokens: string[] = ["<unk>", "<s>", "</s>"];
  const types: number[] = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(TokenType.BYTE);
  }
  const scores: number[] = tokens.map(() => 0);
  const pieces = fillerPieces();
  while (tokens.length < vocab) {
    const next = pieces.next();
    // Beyond the triples (600k+ pieces) numbered pieces keep the vocabulary unique.
    const piece = next.done ? `${SPACE}tok${tokens.length}` : next.value;
    tokens.push(piece);
    types.push(TokenType.NORMAL);
    scores.push(-(tokens.length - BYTE_VOCAB_MIN));
  }
  return {
    "tokenizer.ggml.model": typed(GgufValueType.STRING, "llama"),
    "tokenizer.ggml.tokens": typedArray(GgufValueType.STRING, tokens),
    "tokenizer.ggml.scores": typedArray(GgufValueType.FLOAT32, scores),
    "tokenizer.ggml.token_type": typedArray(GgufValueType.INT32, types),
    "tokenizer.ggml.unknown_token_id": typed(GgufValueType.UINT32, 0),
    "tokenizer.ggml.bos_token_id": typed(GgufValueType.UINT32, 1),
    "tokenizer.ggml.eos_token_id": typed(GgufValueType.UINT32, 2),
    "tokenizer.ggml.add_bos_token": typed(GgufValueType.BOOL, true),
    "tokenizer.ggml.add_eos_token": typed(GgufValueType.BOOL, false),
  };
}

/**
 * Every tokenizer.* key of a real GGUF file, with its stored type, plus the vocabulary size (length of
 * tokenizer.ggml.tokens).
 */
export async function copyTokenizerMetadata(
  path: string,
): Promise<{ metadata: Record<string, GgufTypedValue>; vocab: number }> {
  const file = await readGguf(path, { maxMaterializedArray: Infinity, maxMaterializedTotal: Infinity });
  const metadata: Record<string, GgufTypedValue> = {};
  for (const key of Object.keys(file.metadata)) {
    if (key.startsWith("tokenizer."))
      metadata[key] = { typeInfo: file.metadataTypes[key]!, value: materialize(file.metadata[key]!) };
  }
  const tokens = file.metadata["tokenizer.ggml.tokens"];
  if (!Array.isArray(tokens)) throw new RangeError(`${path} has no tokenizer.ggml.tokens array to copy`);
  return { metadata, vocab: tokens.length };
}
