import { test } from "node:test";
import assert from "node:assert/strict";
import {
  GgufError,
  GgufValueType,
  parseGgufBuffer,
  rewriteGgufBuffer,
  typed,
  validateModelMetadata,
  type GgufMetadataEdits,
} from "../src/index.js";
import { STORIES, TINY, modelBytes } from "./models.js";

/** STORIES (or another model) rewritten with metadata edits, parsed back. */
function variant(edits: GgufMetadataEdits, path = STORIES) {
  const bytes = rewriteGgufBuffer(modelBytes(path), edits);
  return { bytes, file: parseGgufBuffer(bytes, bytes.length) };
}

/** Bounded reading, as the daemon parses: the vocabulary arrays stay GgufArrayRefs. */
const BOUNDED = { maxMaterializedArray: 16, maxMaterializedTotal: 64 };

function rejects(edits: GgufMetadataEdits, code: string, message: RegExp): void {
  const { bytes, file } = variant(edits);
  // Every check must hold whether the arrays were built or left in the header bytes.
  for (const parsed of [file, parseGgufBuffer(bytes, bytes.length, BOUNDED)]) {
    assert.throws(
      () => validateModelMetadata(parsed),
      (e) => e instanceof GgufError && e.code === code && message.test(e.message),
      JSON.stringify(edits),
    );
  }
}

test("rewriteGgufBuffer edits metadata and keeps every tensor's bytes", () => {
  const original = modelBytes(STORIES);
  const before = parseGgufBuffer(original, original.length);
  const { bytes, file } = variant({
    "general.name": "edited",
    "llama.attention.layer_norm_rms_epsilon": typed(GgufValueType.FLOAT32, 0.5),
    "general.description": null,
    "test.added": 7,
  });
  assert.equal(file.metadata["general.name"], "edited");
  assert.equal(file.metadata["llama.attention.layer_norm_rms_epsilon"], 0.5);
  assert.equal(file.metadata["test.added"], 7);
  assert.ok(!("general.description" in file.metadata));
  assert.deepEqual(file.metadata["tokenizer.ggml.tokens"], before.metadata["tokenizer.ggml.tokens"]);
  assert.equal(file.tensors.length, before.tensors.length);
  for (const [i, t] of file.tensors.entries()) {
    const o = before.tensors[i]!;
    assert.equal(t.name, o.name);
    assert.ok(bytes.subarray(t.offset, t.offset + t.size).equals(original.subarray(o.offset, o.offset + o.size)));
  }
  // An alignment edit lays the data out again.
  const wide = variant({ "general.alignment": 256 });
  assert.equal(wide.file.alignment, 256);
  assert.ok(wide.file.tensors.every((t) => t.offset % 256 === 0));
  validateModelMetadata(wide.file);
});

test("values llama.cpp aborts on (seen crashing runners) are rejected, naming the key and value", () => {
  // ggml-backend.cpp: GGML_ASSERT((uintptr_t)ptr % TENSOR_ALIGNMENT == 0 && "buffer pointer must be aligned")
  for (const a of [1, 8, 16]) rejects({ "general.alignment": a }, "bad_alignment", new RegExp(`alignment is ${a}`));
  // ggml-cpu/ops.cpp: GGML_ASSERT(eps >= 0.0f) in the norm kernels, on the first decode.
  for (const eps of [NaN, -1, -Infinity, Infinity]) {
    rejects(
      { "llama.attention.layer_norm_rms_epsilon": eps },
      "bad_metadata",
      /layer_norm_rms_epsilon is .* \(must be a finite number >= 0/,
    );
  }
  rejects({ "llama.attention.layer_norm_epsilon": typed(GgufValueType.FLOAT32, -0.5) }, "bad_metadata", /-0.5/);
  // llama-vocab.cpp: GGML_ABORT in token_to_byte for a WordPiece vocabulary with byte tokens.
  rejects({ "tokenizer.ggml.model": "bert" }, "bad_metadata", /"bert" \(WordPiece\) but token 3 is a byte token/);
  // Load failures llama.cpp reports itself, refused at import instead of at the first request.
  rejects({ "tokenizer.ggml.model": "foo" }, "bad_metadata", /"foo", which llama.cpp cannot load/);
  rejects({ "tokenizer.ggml.model": null }, "bad_metadata", /tokenizer.ggml.model is missing/);
  rejects({ "tokenizer.ggml.model": "gpt2" }, "bad_metadata", /tokenizer.ggml.merges is missing/);
  rejects({ "tokenizer.ggml.model": "none" }, "bad_metadata", /no vocabulary/);
});

test("hyper-parameters that disagree with the tensors are refused (they made the daemon plan terabytes)", () => {
  rejects(
    { "llama.embedding_length": 2 ** 31 - 64 },
    "bad_metadata",
    /embedding_length is 2147483584 but tensor "token_embd.weight" is 64 wide/,
  );
  rejects({ "llama.block_count": 4 }, "bad_metadata", /block_count is 4 but the file has tensors for 5 blocks/);
  rejects(
    { "llama.feed_forward_length": 2 ** 30 },
    "bad_metadata",
    /feed_forward_length is 1073741824 but tensor "blk.0.ffn_up.weight" has 172 rows/,
  );
  rejects(
    { "llama.attention.head_count_kv": 2 },
    "bad_metadata",
    /head_count_kv 2 x key length 8 is 16 but tensor "blk.0.attn_k.weight" has 32 rows/,
  );
  const tokens = modelBytes(STORIES);
  const t = parseGgufBuffer(tokens, tokens.length).metadata["tokenizer.ggml.tokens"] as string[];
  rejects(
    { "tokenizer.ggml.tokens": [...t, "extra"], "tokenizer.ggml.scores": null, "tokenizer.ggml.token_type": null },
    "bad_metadata",
    /513 tokens but tensor "token_embd.weight" has 512 rows/,
  );
});

test("harmless values at the edges pass", () => {
  for (const edits of [
    { "general.alignment": 32 },
    { "general.alignment": 64 },
    { "llama.attention.layer_norm_rms_epsilon": 0 },
    { "llama.attention.layer_norm_rms_epsilon": 1e30 },
    { "tokenizer.ggml.model": "t5" },
    { "tokenizer.ggml.model": "rwkv" },
  ] as GgufMetadataEdits[]) {
    const { bytes, file } = variant(edits);
    validateModelMetadata(file);
    validateModelMetadata(parseGgufBuffer(bytes, bytes.length, BOUNDED));
  }
  validateModelMetadata(variant({ "general.name": "x" }, TINY).file);
});
