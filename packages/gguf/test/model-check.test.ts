import { test } from "node:test";
import assert from "node:assert/strict";
import { GgufError, GgufValueType, parseGgufBuffer, validateModelMetadata, type GgufFile } from "../src/index.js";
import { STORIES, TINY, modelBytes } from "./models.js";

function load(path: string): GgufFile {
  const b = modelBytes(path);
  return parseGgufBuffer(b, b.length);
}

/** A copy of a parsed file with metadata edits applied (undefined deletes a key). */
function edited(path: string, edits: Record<string, unknown>, types: Record<string, unknown> = {}): GgufFile {
  const g = load(path);
  const metadata = { ...g.metadata } as Record<string, unknown>;
  const metadataTypes = { ...g.metadataTypes } as Record<string, unknown>;
  for (const [k, v] of Object.entries(edits)) {
    if (v === undefined) delete metadata[k];
    else metadata[k] = v;
  }
  Object.assign(metadataTypes, types);
  return { ...g, metadata, metadataTypes } as GgufFile;
}

function rejects(file: GgufFile, message: RegExp): void {
  assert.throws(
    () => validateModelMetadata(file),
    (e) => e instanceof GgufError && e.code === "bad_metadata" && message.test(e.message),
  );
}

test("the real models pass", () => {
  validateModelMetadata(load(STORIES));
  validateModelMetadata(load(TINY));
});

test("values that make llama.cpp abort or divide by zero are rejected", () => {
  rejects(edited(STORIES, { "general.architecture": undefined }), /general.architecture is missing/);
  rejects(edited(STORIES, { "llama.block_count": 0 }), /llama.block_count is 0/);
  rejects(edited(STORIES, { "llama.block_count": 513 }), /above llama.cpp's maximum 512/);
  rejects(edited(STORIES, { "llama.embedding_length": undefined }), /llama.embedding_length is missing/);
  rejects(edited(STORIES, { "llama.context_length": -1 }), /context_length is -1/);
  // Both seen in fuzzing: a renamed key left n_ff or n_head at 0 and llama.cpp hit GGML_ASSERT.
  rejects(edited(STORIES, { "llama.feed_forward_length": undefined }), /llama.feed_forward_length is missing/);
  rejects(edited(STORIES, { "llama.attention.head_count": 0 }), /head_count has value 0/);
  rejects(edited(STORIES, { "llama.attention.head_count_kv": 3 }), /not a multiple of head_count_kv 3/);
  rejects(
    edited(STORIES, { "llama.attention.head_count": 7, "llama.attention.head_count_kv": 7 }),
    /embedding_length 64 is not a multiple/,
  );
  rejects(edited(STORIES, { "llama.expert_count": 2000 }), /expert_count is 2000/);
  rejects(edited(STORIES, { "llama.expert_count": 8, "llama.expert_used_count": 9 }), /expert_used_count is 9/);
  rejects(edited(STORIES, { "llama.expert_used_count": 2 }), /expert_used_count is 2 with llama.expert_count 0/);
  rejects(edited(STORIES, { "llama.rope.scaling.type": "weird" }), /rope.scaling.type is "weird"/);
  validateModelMetadata(
    edited(STORIES, { "llama.rope.scaling.type": "yarn", "llama.expert_count": 8, "llama.expert_used_count": 2 }),
  );
  validateModelMetadata(edited(STORIES, { "llama.feed_forward_length": [172, 172, 172, 172, 172] }));
});

test("1-D tensors of a dense model must be F32", () => {
  const g = load(TINY);
  const tensors = g.tensors.map((t) =>
    t.name === "blk.0.ffn_norm.weight" ? { ...t, type: 1, typeName: "F16", size: t.size / 2 } : t,
  );
  rejects({ ...g, tensors }, /tensor "blk.0.ffn_norm.weight" is 1-D of type F16/);
  const ints = g.tensors.map((t) => (t.name === "blk.0.attn_q.weight" ? { ...t, type: 25, typeName: "I16" } : t));
  rejects({ ...g, tensors: ints }, /"blk.0.attn_q.weight" has type I16/);
});

test("tokenizer arrays llama.cpp would read out of bounds or assert on", () => {
  const tokens = load(STORIES).metadata["tokenizer.ggml.tokens"] as string[];
  const dup = [...tokens];
  dup[300] = dup[301]!;
  rejects(edited(STORIES, { "tokenizer.ggml.tokens": dup }), /twice \(ids 300 and 301\)/);
  const scores = load(STORIES).metadata["tokenizer.ggml.scores"] as number[];
  rejects(edited(STORIES, { "tokenizer.ggml.scores": scores.slice(0, 100) }), /scores has 100 entries for 512 tokens/);
  rejects(
    edited(
      STORIES,
      {},
      { "tokenizer.ggml.token_type": { type: GgufValueType.ARRAY, element: { type: GgufValueType.UINT32 } } },
    ),
    /token_type has the wrong type/,
  );
  rejects(
    edited(
      STORIES,
      {},
      { "tokenizer.ggml.tokens": { type: GgufValueType.ARRAY, element: { type: GgufValueType.INT32 } } },
    ),
    /not an array of strings/,
  );
});
