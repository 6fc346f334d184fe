import { encodeF16, encodeF32, encodeQ8_0, Q8_0_BLOCK } from "./encode.js";
import { createPrng } from "./fuzz.js";
import { GgmlType } from "./ggml-types.js";
import { byteTokenizerMetadata, copyTokenizerMetadata } from "./tokenizer-vocab.js";
import { GgufValueType } from "./types.js";
import { GgufWriter, typed, type GgufTypedValue, type GgufWriteOptions } from "./writer.js";

/** Weight format of a synthetic model's matrices (norm weights are always F32). */
export type SynthWeightType = "F32" | "F16" | "Q8_0";

/** Shape of a synthetic llama model. */
export interface LlamaShape {
  /** Embedding length (n_embd). Must be a multiple of `heads` (and of 32 for Q8_0). */
  dim: number;
  /** Number of transformer blocks. */
  layers: number;
  /** Attention heads. */
  heads: number;
  /** KV heads (grouped-query attention); default `heads`. Must divide `heads`. */
  kvHeads?: number;
  /** Feed-forward length (a multiple of 32 for Q8_0). */
  ffn: number;
  /** Vocabulary size; default 512 for the byte tokenizer, the source's size for copyFrom. */
  vocab?: number;
  /** Training context length written to llama.context_length; default 2048. */
  contextLength?: number;
  /** Matrix weight format. */
  type: SynthWeightType;
  /** PRNG seed of the weights; default 1. Same seed and shape, same bytes. */
  seed?: number;
  /** "byte" (default): a built-in byte-fallback vocabulary; copyFrom: tokenizer.* keys of a real GGUF. */
  tokenizer?: "byte" | { copyFrom: string };
  /** general.name; default "llmos-synth-<dim>x<layers>". */
  name?: string;
  /**
   * Omit output.weight so llama.cpp ties the output projection to token_embd (as llama2.c's stories
   * models do). Default false.
   */
  tiedEmbeddings?: boolean;
}

/**
 * Standard synthetic models (llama2.c "stories" shapes with tied embeddings: ~42M and ~110M parameters), in F16
 * (the shapes the performance targets are set on) and Q8_0 (quantized weights, as people run models).
 */
export const SYNTH_SHAPES = {
  "llama-42m": { dim: 512, layers: 8, heads: 8, ffn: 1376, vocab: 32000, type: "F16", tiedEmbeddings: true, seed: 42 },
  "llama-110m": {
    dim: 768,
    layers: 12,
    heads: 12,
    ffn: 2048,
    vocab: 32000,
    type: "F16",
    tiedEmbeddings: true,
    seed: 110,
  },
  "llama-42m-q8_0": {
    dim: 512,
    layers: 8,
    heads: 8,
    ffn: 1376,
    vocab: 32000,
    type: "Q8_0",
    tiedEmbeddings: true,
    seed: 42,
  },
  "llama-110m-q8_0": {
    dim: 768,
    layers: 12,
    heads: 12,
    ffn: 2048,
    vocab: 32000,
    type: "Q8_0",
    tiedEmbeddings: true,
    seed: 110,
  },
} as const satisfies Record<string, LlamaShape>;

/** Name of a standard synthetic model. */
export type SynthShapeName = keyof typeof SYNTH_SHAPES;

const FILE_TYPES: Record<SynthWeightType, number> = { F32: 0, F16: 1, Q8_0: 7 };
const GGML_TYPES: Record<SynthWeightType, number> = { F32: GgmlType.F32, F16: GgmlType.F16, Q8_0: GgmlType.Q8_0 };
/** Values generated per chunk while streaming a tensor (a multiple of the Q8_0 block). */
const CHUNK_VALUES = 64 * 1024;
const WEIGHT_STD = 0.02;

/** Standard normal samples from a uniform PRNG (Box-Muller, both outputs used). */
function normalSource(seed: number): () => number {
  const rnd = createPrng(seed);
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const u = 1 - rnd();
    const v = rnd();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

function encoderFor(type: SynthWeightType): (v: Float32Array) => Buffer {
  return type === "F32" ? encodeF32 : type === "F16" ? encodeF16 : encodeQ8_0;
}

/** Lazily generated chunks of `count` weights ~ N(0, 0.02^2). */
function randomWeights(count: number, type: SynthWeightType, seed: number): () => Iterable<Uint8Array> {
  const encode = encoderFor(type);
  return function* () {
    const normal = normalSource(seed);
    for (let done = 0; done < count;) {
      const n = Math.min(CHUNK_VALUES, count - done);
      const values = new Float32Array(n);
      for (let i = 0; i < n; i++) values[i] = normal() * WEIGHT_STD;
      yield encode(values);
      done += n;
    }
  };
}

function ones(count: number): Uint8Array {
  return encodeF32(new Float32Array(count).fill(1));
}

function checkShape(shape: LlamaShape, kvHeads: number): void {
  const positive = (name: string, v: number): void => {
    if (!Number.isSafeInteger(v) || v <= 0)
      throw new RangeError(`LlamaShape.${name} must be a positive integer, got ${v}`);
  };
  positive("dim", shape.dim);
  positive("layers", shape.layers);
  positive("heads", shape.heads);
  positive("kvHeads", kvHeads);
  positive("ffn", shape.ffn);
  if (shape.dim % shape.heads !== 0) throw new RangeError(`dim ${shape.dim} is not a multiple of heads ${shape.heads}`);
  if (shape.heads % kvHeads !== 0) throw new RangeError(`heads ${shape.heads} is not a multiple of kvHeads ${kvHeads}`);
  if (shape.type === "Q8_0" && (shape.dim % Q8_0_BLOCK !== 0 || shape.ffn % Q8_0_BLOCK !== 0)) {
    throw new RangeError(`Q8_0 needs dim and ffn multiples of ${Q8_0_BLOCK}, got dim ${shape.dim}, ffn ${shape.ffn}`);
  }
}

/**
 * Writes a llama-architecture GGUF with random weights (deterministic from `shape.seed`; matrices
 * N(0, 0.02^2), norm weights 1) and complete llama metadata, which llama.cpp loads and runs. Tensor data is
 * generated and written in chunks, so models of hundreds of MB need little memory.
 */
export async function synthesizeLlamaModel(path: string, shape: LlamaShape, options?: GgufWriteOptions): Promise<void> {
  const kvHeads = shape.kvHeads ?? shape.heads;
  checkShape(shape, kvHeads);
  const headDim = shape.dim / shape.heads;
  const seed = shape.seed ?? 1;

  let tokenizer: Record<string, GgufTypedValue>;
  let vocab: number;
  if (shape.tokenizer !== undefined && shape.tokenizer !== "byte") {
    const copied = await copyTokenizerMetadata(shape.tokenizer.copyFrom);
    if (shape.vocab !== undefined && shape.vocab !== copied.vocab) {
      throw new RangeError(
        `vocab ${shape.vocab} differs from the ${copied.vocab} tokens of ${shape.tokenizer.copyFrom}`,
      );
    }
    tokenizer = copied.metadata;
    vocab = copied.vocab;
  } else {
    vocab = shape.vocab ?? 512;
    tokenizer = byteTokenizerMetadata(vocab);
  }

  const w = new GgufWriter();
  const u32 = (v: number): GgufTypedValue => typed(GgufValueType.UINT32, v);
  const f32 = (v: number): GgufTypedValue => typed(GgufValueType.FLOAT32, v);
  w.setMetadata("general.architecture", "llama")
    .setMetadata("general.name", shape.name ?? `llmos-synth-${shape.dim}x${shape.layers}`)
    .setMetadata("general.file_type", u32(FILE_TYPES[shape.type]))
    .setMetadata("general.alignment", u32(32))
    .setMetadata("llama.vocab_size", u32(vocab))
    .setMetadata("llama.context_length", u32(shape.contextLength ?? 2048))
    .setMetadata("llama.embedding_length", u32(shape.dim))
    .setMetadata("llama.block_count", u32(shape.layers))
    .setMetadata("llama.feed_forward_length", u32(shape.ffn))
    .setMetadata("llama.attention.head_count", u32(shape.heads))
    .setMetadata("llama.attention.head_count_kv", u32(kvHeads))
    .setMetadata("llama.rope.dimension_count", u32(headDim))
    .setMetadata("llama.rope.freq_base", f32(10000))
    .setMetadata("llama.attention.layer_norm_rms_epsilon", f32(1e-5));
  for (const key of Object.keys(tokenizer)) w.setMetadata(key, tokenizer[key]!);

  const matType = GGML_TYPES[shape.type];
  let tensorSeed = seed * 1000003;
  const matrix = (name: string, cols: number, rows: number): void => {
    // Each tensor has its own stream, so weights do not depend on the order of generation.
    tensorSeed = (tensorSeed + 0x9e3779b9) >>> 0;
    w.addTensor({ name, dims: [cols, rows], type: matType, data: randomWeights(cols * rows, shape.type, tensorSeed) });
  };
  const norm = (name: string): void => {
    w.addTensor({ name, dims: [shape.dim], type: GgmlType.F32, data: ones(shape.dim) });
  };
  const kvDim = kvHeads * headDim;
  // llama.cpp dim order: ne0 is the input (row) length of each weight matrix.
  matrix("token_embd.weight", shape.dim, vocab);
  norm("output_norm.weight");
  if (!shape.tiedEmbeddings) matrix("output.weight", shape.dim, vocab);
  for (let l = 0; l < shape.layers; l++) {
    norm(`blk.${l}.attn_norm.weight`);
    matrix(`blk.${l}.attn_q.weight`, shape.dim, shape.dim);
    matrix(`blk.${l}.attn_k.weight`, shape.dim, kvDim);
    matrix(`blk.${l}.attn_v.weight`, shape.dim, kvDim);
    matrix(`blk.${l}.attn_output.weight`, shape.dim, shape.dim);
    norm(`blk.${l}.ffn_norm.weight`);
    matrix(`blk.${l}.ffn_gate.weight`, shape.dim, shape.ffn);
    matrix(`blk.${l}.ffn_down.weight`, shape.ffn, shape.dim);
    matrix(`blk.${l}.ffn_up.weight`, shape.dim, shape.ffn);
  }
  await w.write(path, options);
}

/**
 * A standard shape with its tokenizer resolved: copied from `tokenizerSource` (a GGUF with the 32000-token
 * Llama-2 vocabulary, e.g. llama-2-tiny-random) when given, else the byte tokenizer padded to the vocab.
 */
export function standardShape(name: SynthShapeName, tokenizerSource?: string): LlamaShape {
  const base: LlamaShape = { ...SYNTH_SHAPES[name], name: `llmos-${name}` };
  return tokenizerSource ? { ...base, tokenizer: { copyFrom: tokenizerSource } } : { ...base, tokenizer: "byte" };
}
