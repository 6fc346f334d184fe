import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { EngineModel, GenerateParams, SamplingOptions } from "../../src/engine/engine.js";
import { LlamaNodeEngine } from "../../src/engine/llama-node/llama-node-engine.js";
import { STORIES, STORIES_GOLDEN } from "../support/paths.js";

const greedy: SamplingOptions = {
  temperature: 0,
  topK: 40,
  topP: 1,
  minP: 0,
  repeatPenalty: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
  penaltyLastN: 64,
};

async function collect(model: EngineModel, params: Partial<GenerateParams>) {
  const gen = model.generate({ prompt: "Once upon a time", maxTokens: 40, sampling: greedy, stop: [], ...params });
  let text = "";
  for await (const chunk of gen) text += chunk.text;
  return { text, result: await gen.result };
}

describe("llama-node engine (node-llama-cpp) on stories260K", () => {
  let engine: LlamaNodeEngine;
  let model: EngineModel;
  before(async () => {
    engine = await LlamaNodeEngine.create({ threads: 1, gpu: false });
    model = await engine.load({ modelPath: STORIES, contextSize: 1024, slots: 4, threads: 1, gpuLayers: 0 });
  });
  after(async () => {
    await model.dispose();
    await model.dispose();
    await engine.dispose();
  });

  test("greedy completion matches the reference text", async () => {
    const { text, result } = await collect(model, {});
    assert.ok(text.startsWith(STORIES_GOLDEN), text);
    assert.equal(result.finishReason, "length");
    assert.equal(result.completionTokens, 40);
    assert.equal(result.promptTokens, 5);
  });

  test("tokenize without BOS matches the reference ids", () => {
    assert.deepEqual(model.tokenize("Once upon a time"), [403, 407, 261, 378]);
    assert.equal(model.detokenize([403, 407, 261, 378]).trim(), "Once upon a time");
  });

  test("stop strings end the text before the stop string", async () => {
    const { text, result } = await collect(model, { stop: ["Lily"] });
    assert.equal(text, ", there was a little girl named ");
    assert.equal(result.finishReason, "stop");
  });

  test("cancel ends a generation and frees its sequence", async () => {
    const gen = model.generate({ prompt: "Once upon a time", maxTokens: 2000, sampling: greedy, stop: [] });
    let n = 0;
    for await (const _ of gen) if (++n === 3) gen.cancel();
    const result = await gen.result;
    assert.equal(result.finishReason, "cancelled");
    assert.ok(result.completionTokens < 20);
    const again = await collect(model, {});
    assert.ok(again.text.startsWith(STORIES_GOLDEN));
  });

  test("four concurrent generations are batched together", async () => {
    const before = model.stats();
    const results = await Promise.all([0, 1, 2, 3].map(() => collect(model, { maxTokens: 24 })));
    for (const r of results) assert.equal(r.result.completionTokens, 24);
    const after = model.stats();
    assert.ok(after.multiSequenceBatches > before.multiSequenceBatches, JSON.stringify(after));
    assert.ok(after.maxSequencesInBatch >= 2);
  });

  test("a continuing conversation reuses its sequence's context; answers equal those without the cache", async () => {
    let prompt = "Once upon a time";
    for (let turn = 0; turn < 4; turn++) {
      const cached = await collect(model, { prompt, maxTokens: 20 });
      const plain = await collect(model, { prompt, maxTokens: 20, cachePrompt: false });
      assert.equal(cached.text, plain.text, `turn ${turn}`);
      assert.equal(plain.result.cachedPromptTokens, 0);
      if (turn > 0)
        assert.ok(cached.result.cachedPromptTokens >= cached.result.promptTokens - 6, JSON.stringify(cached));
      prompt += `${cached.text} Then`;
    }
    const again = await collect(model, { prompt: "Once upon a time" });
    assert.equal(again.result.cachedPromptTokens, 4); // all but the last prompt token
    assert.ok(again.text.startsWith(STORIES_GOLDEN), again.text);
    const slots = model.stats().slots!;
    assert.equal(slots.length, 4);
    assert.ok(slots.some((s) => s.cachedTokens > 0));
  });

  test("JSON grammar constrains output to JSON", async () => {
    const { text } = await collect(model, { grammar: { type: "json" }, maxTokens: 60, prompt: "{" });
    assert.match(text.trim(), /^[{["\d-tfn]/);
  });

  test("embeddings have the model's width", async () => {
    const { vector: v } = await model.embed("Once upon a time");
    assert.equal(v.length, model.facts.embeddingSize);
    assert.ok(v.some((x) => x !== 0));
  });
});

describe("llama-node engine CPU allotments", () => {
  test("an allotment sets the threads of the next decodes (within those loaded with); 0 threads is refused", async () => {
    const engine = await LlamaNodeEngine.create({ threads: 2, gpu: false });
    try {
      const model = await engine.load({ modelPath: STORIES, contextSize: 512, slots: 2, threads: 2, gpuLayers: 0 });
      const context = (model as unknown as { context: { currentThreads: number } }).context;
      await collect(model, { maxTokens: 4 });
      assert.equal(context.currentThreads, 2);
      await model.setCpuAllotment({ threads: 1, shared: true });
      const { text } = await collect(model, {});
      assert.ok(text.startsWith(STORIES_GOLDEN), text);
      assert.equal(context.currentThreads, 1);
      const stats = model.stats();
      assert.ok(stats.contendedBatches > 0 && stats.contendedBatches <= stats.decodeBatches, JSON.stringify(stats));
      await assert.rejects(model.setCpuAllotment({ threads: 0, shared: false }), RangeError);
      await model.dispose();
    } finally {
      await engine.dispose();
    }
  });
});
