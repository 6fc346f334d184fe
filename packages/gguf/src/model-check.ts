import { GgufError } from "./errors.js";
import { checkLlamaAsserts } from "./llama-asserts.js";
import { checkTensorShapes } from "./tensor-shapes.js";
import { findDuplicateToken } from "./token-uniqueness.js";
import type { GgufFile } from "./gguf-file.js";
import { GgufValueType, type GgufTypeInfo } from "./types.js";
import { isArrayValue, type GgufMetadataValue } from "./values.js";

/** llama.cpp's LLAMA_MAX_LAYERS and LLAMA_MAX_EXPERTS: above them it aborts (GGML_ASSERT). */
const MAX_LAYERS = 512;
const MAX_EXPERTS = 1024;
/** Dense transformer architectures whose feed-forward length and head count must be present and > 0. */
const DENSE_ARCHS = new Set([
  "llama",
  "qwen2",
  "qwen3",
  "gemma",
  "gemma2",
  "gemma3",
  "phi3",
  "granite",
  "mistral3",
  "olmo2",
]);
/** Types no llama.cpp weight uses: integers, F64, and the activation-only Q8_1 / Q8_K (no CPU matmul). */
const NON_WEIGHT_TYPES = new Set(["I8", "I16", "I32", "I64", "F64", "Q8_1", "Q8_K"]);
const ROPE_SCALING_TYPES = new Set(["none", "linear", "yarn", "longrope"]);

function fail(message: string): never {
  throw new GgufError("bad_metadata", message);
}

function isArrayOf(info: GgufTypeInfo | undefined, element: number): boolean {
  return info?.type === GgufValueType.ARRAY && info.element.type === element;
}

/**
 * Checks the model-level metadata that llama.cpp trusts: values that make it abort the whole process
 * (GGML_ASSERT) or divide by zero instead of returning an error. Run it after {@link readGguf} on any file
 * about to be loaded. Checks:
 * - general.architecture is a non-empty string;
 * - `<arch>.context_length`, `.embedding_length`, `.block_count` are positive integers, block_count <= 512;
 * - expert counts: expert_count <= 1024, expert_used_count <= expert_count, > 0 when experts exist;
 * - for dense transformers (llama, qwen2, qwen3, gemma*, phi3, ...): feed_forward_length and
 *   attention.head_count present and > 0 (scalar or per-layer array), head_count_kv > 0 and dividing
 *   head_count, embedding_length divisible by head_count unless attention.key_length is given, and every
 *   1-D tensor (norm weights, biases) F32: ggml's CPU add/mul abort on an f16 second operand (seen in
 *   fuzzing: a norm weight retyped F32 -> F16 loads, then aborts the process on the first decode), and no
 *   tensor of a non-weight type (I8..I64, F64, Q8_1, Q8_K);
 * - `<arch>.rope.scaling.type`, when present, is none/linear/yarn/longrope;
 * - tokenizer.ggml.tokens (when present) is an array of unique strings (llama.cpp asserts uniqueness),
 *   scores an f32/i32 array and token_type an i32 array, each at least as long as tokens; merges strings;
 * - hyper-parameters that disagree with the tensors (embedding width, vocabulary, blocks): {@link checkTensorShapes};
 * - then what llama.cpp asserts on later, at load or first decode (alignment, norm epsilons, tokenizer model):
 *   see {@link checkLlamaAsserts}.
 *
 * @throws {GgufError} code "bad_metadata", naming the key and the value.
 */
export function validateModelMetadata(file: GgufFile): void {
  const md = file.metadata;
  const types = file.metadataTypes;
  const has = (k: string): boolean => Object.prototype.hasOwnProperty.call(md, k);
  const get = (k: string): GgufMetadataValue | undefined => (has(k) ? md[k] : undefined);

  const arch = get("general.architecture");
  if (typeof arch !== "string" || arch.length === 0) fail(`general.architecture is missing or not a non-empty string`);

  const positiveInt = (key: string, required: boolean, max?: number): number | undefined => {
    const v = get(key);
    if (v === undefined) {
      if (required) fail(`${key} is missing`);
      return undefined;
    }
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0)
      fail(`${key} is ${String(v)} (must be a positive integer)`);
    if (max !== undefined && v > max) fail(`${key} is ${v}, above llama.cpp's maximum ${max}`);
    return v;
  };
  /** A per-layer value: a scalar or an array of block_count integers, each > 0 (or >= 0 when allowZero). */
  const perLayer = (key: string, required: boolean): number[] | undefined => {
    const v = get(key);
    if (v === undefined) {
      if (required) fail(`${key} is missing`);
      return undefined;
    }
    const values = Array.isArray(v) ? v : [v];
    if (values.length === 0) fail(`${key} is an empty array`);
    for (const x of values) {
      if (typeof x !== "number" || !Number.isInteger(x) || x <= 0)
        fail(`${key} has value ${String(x)} (must be positive integers)`);
    }
    return values as number[];
  };

  positiveInt(`${arch}.context_length`, true);
  const nEmbd = positiveInt(`${arch}.embedding_length`, true)!;
  positiveInt(`${arch}.block_count`, true, MAX_LAYERS);

  const expertKey = `${arch}.expert_count`;
  const usedKey = `${arch}.expert_used_count`;
  const experts = get(expertKey);
  const used = get(usedKey);
  if (
    experts !== undefined &&
    (typeof experts !== "number" || !Number.isInteger(experts) || experts < 0 || experts > MAX_EXPERTS)
  ) {
    fail(`${expertKey} is ${String(experts)} (must be an integer 0..${MAX_EXPERTS})`);
  }
  if (used !== undefined) {
    const usedMax = Math.max(...(Array.isArray(used) ? used : [used]).map((x) => (typeof x === "number" ? x : NaN)));
    const nExperts = typeof experts === "number" ? experts : 0;
    if (!Number.isInteger(usedMax) || usedMax < 0 || usedMax > nExperts || (nExperts > 0 && usedMax === 0)) {
      fail(`${usedKey} is ${String(used)} with ${expertKey} ${nExperts} (must be 1..${nExperts})`);
    }
  }

  if (DENSE_ARCHS.has(arch)) {
    perLayer(`${arch}.feed_forward_length`, true);
    const heads = perLayer(`${arch}.attention.head_count`, true)!;
    const kv = perLayer(`${arch}.attention.head_count_kv`, false);
    if (kv) {
      for (let i = 0; i < Math.max(heads.length, kv.length); i++) {
        const h = heads[Math.min(i, heads.length - 1)]!;
        const k = kv[Math.min(i, kv.length - 1)]!;
        if (h % k !== 0) fail(`${arch}.attention.head_count ${h} is not a multiple of head_count_kv ${k}`);
      }
    }
    if (!has(`${arch}.attention.key_length`) && heads.some((h) => nEmbd % h !== 0)) {
      fail(`${arch}.embedding_length ${nEmbd} is not a multiple of attention.head_count ${heads.join(",")}`);
    }
    for (const t of file.tensors) {
      if (NON_WEIGHT_TYPES.has(t.typeName)) {
        fail(
          `tensor ${JSON.stringify(t.name)} has type ${t.typeName}, which is not a weight type llama.cpp can compute with`,
        );
      }
      if (t.dims.length === 1 && t.typeName !== "F32") {
        fail(
          `tensor ${JSON.stringify(t.name)} is 1-D of type ${t.typeName}; llama.cpp needs F32 for norm weights and biases`,
        );
      }
    }
  }

  const rope = get(`${arch}.rope.scaling.type`);
  if (rope !== undefined && (typeof rope !== "string" || !ROPE_SCALING_TYPES.has(rope))) {
    fail(`${arch}.rope.scaling.type is ${JSON.stringify(rope)} (must be one of ${[...ROPE_SCALING_TYPES].join(", ")})`);
  }

  const tokens = get("tokenizer.ggml.tokens");
  if (tokens !== undefined) {
    if (!isArrayValue(tokens) || !isArrayOf(types["tokenizer.ggml.tokens"], GgufValueType.STRING)) {
      fail(`tokenizer.ggml.tokens is not an array of strings`);
    }
    const dup = findDuplicateToken(tokens);
    if (dup) fail(`tokenizer.ggml.tokens has ${JSON.stringify(dup.text)} twice (ids ${dup.first} and ${dup.second})`);
    const sized = (key: string, elements: number[]): void => {
      const v = get(key);
      if (v === undefined) return;
      const info = types[key];
      if (!isArrayValue(v) || !elements.some((e) => isArrayOf(info, e))) fail(`${key} has the wrong type`);
      if (v.length < tokens.length) fail(`${key} has ${v.length} entries for ${tokens.length} tokens`);
    };
    sized("tokenizer.ggml.scores", [GgufValueType.FLOAT32, GgufValueType.INT32]);
    sized("tokenizer.ggml.token_type", [GgufValueType.INT32]);
  }
  const merges = get("tokenizer.ggml.merges");
  if (merges !== undefined && !isArrayOf(types["tokenizer.ggml.merges"], GgufValueType.STRING)) {
    fail(`tokenizer.ggml.merges is not an array of strings`);
  }
  checkTensorShapes(file);
  checkLlamaAsserts(file);
}
