/** KV cache types: the memory estimate follows them; the choice between model and daemon settings. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { loadConfig } from "../../src/config/load.js";
import { chooseKvCacheTypes } from "../../src/scheduler/kv-cache.js";
import { estimateMemory, type ModelShape } from "../../src/scheduler/memory-estimator.js";
import { decideSizing } from "../../src/scheduler/sizing.js";
import { snapshot } from "./harness.js";

// The synthetic 42M model: 8 layers, 8 heads of 64, no GQA.
const shape42m: ModelShape = {
  tensorBytes: 83_000_000,
  blockCount: 8,
  headCount: 8,
  headCountKv: 8,
  embeddingLength: 512,
  feedForwardLength: 1376,
  vocabSize: 32000,
};
const f16 = { k: "f16", v: "f16" } as const;

describe("KV cache types", () => {
  test("the estimate's KV cache: f16 2 bytes, q8_0 34/32, q4_0 18/32 per element, K and V each", () => {
    const kv = (k: "f16" | "q8_0" | "q4_0", v = k) =>
      estimateMemory(shape42m, { contextSize: 2048, slots: 1, engine: "llama-ffi", kvCacheType: { k, v } }).kvCache;
    assert.equal(kv("f16"), 8 * 512 * 2048 * 4); // 32 MiB
    assert.equal(kv("q8_0"), 8 * 512 * 2048 * (34 / 16));
    assert.equal(kv("q4_0"), 8 * 512 * 2048 * (18 / 16));
    assert.equal(kv("q8_0", "f16"), 8 * 512 * 2048 * (34 / 32 + 2));
    assert.equal(estimateMemory(shape42m, { contextSize: 2048, slots: 1, engine: "llama-ffi" }).kvCache, kv("f16"));
  });

  test("a model's setting wins; the daemon's falls back to f16 where the head size does not allow it", () => {
    assert.deepEqual(chooseKvCacheTypes("m", 64, undefined, { k: "q8_0", v: "q8_0" }), {
      kv: { k: "q8_0", v: "q8_0" },
      fellBack: false,
    });
    assert.deepEqual(chooseKvCacheTypes("m", 64, { v: "q4_0" }, { k: "q8_0", v: "q8_0" }).kv, { k: "q8_0", v: "q4_0" });
    assert.deepEqual(chooseKvCacheTypes("stories", 8, undefined, { k: "q8_0", v: "q8_0" }), {
      kv: f16,
      fellBack: true,
    });
    assert.throws(
      () => chooseKvCacheTypes("stories", 8, { k: "q4_0" }, f16),
      (e: any) => e.code === "invalid_request" && /multiple of 32; this model's are 8/.test(e.message),
    );
  });

  test("sizing follows the types: the estimate, what fits a tight budget, and the fallback for small heads", () => {
    const request = { model: "m", shape: shape42m, trainContextSize: 2048, contextSize: 2048, parallel: 1 };
    const defaults = { engine: "llama-ffi", contextSize: 2048, parallel: 1, overheadBytes: undefined, gpu: false };
    const f16Sizing = decideSizing(request, defaults, snapshot([]));
    const q8 = decideSizing(request, { ...defaults, kvCacheType: { k: "q8_0", v: "q8_0" } }, snapshot([]));
    assert.deepEqual(f16Sizing.kvCacheType, f16);
    assert.deepEqual(q8.kvCacheType, { k: "q8_0", v: "q8_0" });
    assert.equal(f16Sizing.ramBytes - q8.ramBytes, f16Sizing.estimate.kvCache - q8.estimate.kvCache);
    assert.ok(q8.estimate.kvCache < f16Sizing.estimate.kvCache / 1.8);
    // The model's own setting wins over the daemon's.
    const own = decideSizing(
      { ...request, kvCacheType: { k: "q4_0" } },
      { ...defaults, kvCacheType: f16 },
      snapshot([]),
    );
    assert.deepEqual(own.kvCacheType, { k: "q4_0", v: "f16" });

    // Without an explicit context, a budget that f16 only fits at a shrunk context fits a q4_0 cache whole.
    const auto = { ...request, contextSize: undefined };
    const budget = { memoryBudgetBytes: f16Sizing.ramBytes - 1 };
    assert.ok(decideSizing(auto, defaults, snapshot([], budget)).contextSize < 2048);
    const q4 = decideSizing(auto, { ...defaults, kvCacheType: { k: "q4_0", v: "q4_0" } }, snapshot([], budget));
    assert.equal(q4.contextSize, 2048);

    // Heads of 8 (stories260K): the daemon's q8_0 gives way to f16; the model's own q8_0 is refused.
    const small = { ...request, shape: { ...shape42m, embeddingLength: 64 } };
    const fell = decideSizing(small, { ...defaults, kvCacheType: { k: "q8_0", v: "q8_0" } }, snapshot([]));
    assert.deepEqual([fell.kvCacheType, fell.kvCacheFellBack], [f16, true]);
    assert.throws(
      () => decideSizing({ ...small, kvCacheType: { v: "q8_0" } }, defaults, snapshot([])),
      (e: any) => e.code === "invalid_request",
    );
  });

  test("LLMOS_KV_CACHE_TYPE sets both, _K and _V each; bad values are refused", () => {
    assert.deepEqual(loadConfig({ env: {} }).kvCacheType, f16);
    assert.deepEqual(loadConfig({ env: { LLMOS_KV_CACHE_TYPE: "q8_0" } }).kvCacheType, { k: "q8_0", v: "q8_0" });
    assert.deepEqual(loadConfig({ env: { LLMOS_KV_CACHE_TYPE: "q8_0", LLMOS_KV_CACHE_TYPE_V: "q4_0" } }).kvCacheType, {
      k: "q8_0",
      v: "q4_0",
    });
    assert.throws(() => loadConfig({ env: { LLMOS_KV_CACHE_TYPE: "q5_1" } }), /must be one of f16, q8_0, q4_0/);
  });
});
