import assert from "node:assert/strict";
import { test } from "node:test";
import { EMBED_BATCH_CHARS, EMBED_BATCH_INPUTS, embeddingBatches } from "../../src/inference/inference-service.js";

test("embedding inputs are batched by count and by characters, in order, an oversized input alone", () => {
  const many = Array.from({ length: 70 }, (_, i) => `t${i}`);
  const byCount = [...embeddingBatches(many)];
  assert.deepEqual(
    byCount.map((b) => b.length),
    [EMBED_BATCH_INPUTS, EMBED_BATCH_INPUTS, 70 - 2 * EMBED_BATCH_INPUTS],
  );
  assert.deepEqual(byCount.flat(), many);
  const big = "x".repeat(EMBED_BATCH_CHARS);
  const byChars = [...embeddingBatches(["a", big, "b", "c"])];
  assert.deepEqual(
    byChars.map((b) => b.map((t) => t.length)),
    [[1], [EMBED_BATCH_CHARS], [1, 1]],
  );
  assert.deepEqual([...embeddingBatches([])], []);
});
