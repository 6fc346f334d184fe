/**
 * The llama-ffi prompt cache on real llama.cpp (stories260K): at temperature 0 every answer is the one the same
 * prompt gets with the cache off (a second model loaded without reuse), over multi-turn conversations, prompts that
 * share a prefix and then differ, prefixes copied between slots (also from a slot still generating), concurrent
 * sequences, and prompts the cache holds entirely. Both KV layouts: one stream per sequence (256 cells each) and
 * one unified cache (200 cells each).
 */
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import type { EngineModel, GenerateParams, GenerateResult, Generation } from "../../src/engine/engine.js";
import { LlamaFfiEngine } from "../../src/engine/llama-ffi/index.js";
import { STORIES } from "../support/paths.js";

const GREEDY = {
  temperature: 0,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repeatPenalty: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
  penaltyLastN: 64,
};
/** About 100 tokens that several requests share (a stand-in for a system prompt). */
const PREAMBLE =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw " +
  'a big, red ball. She wanted to play with it. Her mom said, "Be careful, Lily!" Lily ran to the ball and ' +
  "kicked it high. The ball flew over the trees and the sun. ";

const params = (prompt: string, p: Partial<GenerateParams> = {}): GenerateParams => ({
  prompt,
  maxTokens: 40,
  sampling: GREEDY,
  stop: [],
  ...p,
});

async function run(g: Generation): Promise<{ text: string; result: GenerateResult }> {
  let text = "";
  for await (const c of g) text += c.text;
  return { text, result: await g.result };
}

for (const layout of [
  { name: "one KV stream per sequence", contextSize: 1024 },
  { name: "a unified KV cache", contextSize: 800 },
]) {
  describe(`prompt cache (${layout.name})`, { skip: existsSync(STORIES) ? false : `missing ${STORIES}` }, () => {
    let engine: LlamaFfiEngine;
    /** A fresh model per test: what the slots hold at the start is part of each test's setup. */
    let model: EngineModel;
    let plain: EngineModel;
    const load = () =>
      engine.load({ modelPath: STORIES, contextSize: layout.contextSize, slots: 4, threads: 1, gpuLayers: 0 });
    /** The answer without any reuse (its own model, so the cache under test is not disturbed). */
    const reference = (prompt: string, p: Partial<GenerateParams> = {}) =>
      run(plain.generate(params(prompt, { ...p, cachePrompt: false })));

    before(async () => {
      engine = await LlamaFfiEngine.create({});
      plain = await load();
    });
    beforeEach(async () => {
      model = await load();
    });
    afterEach(async () => {
      await model?.dispose();
    });
    after(async () => {
      await engine?.dispose();
    });

    test("a multi-turn conversation evaluates only each turn's new tokens; answers are unchanged", async () => {
      let prompt = "Once upon a time";
      for (let turn = 0; turn < 5; turn++) {
        const cached = await run(model.generate(params(prompt, { maxTokens: 24 })));
        const ref = await reference(prompt, { maxTokens: 24 });
        assert.equal(cached.text, ref.text, `turn ${turn}`);
        assert.equal(cached.result.promptTokens, ref.result.promptTokens);
        assert.equal(ref.result.cachedPromptTokens, 0);
        // Everything but the new text after the previous answer (and the token the answer ended on) is reused.
        if (turn > 0)
          assert.ok(cached.result.promptTokens - cached.result.cachedPromptTokens <= 6, JSON.stringify(cached));
        prompt += cached.text + " Then";
      }
    });

    test("a prompt held entirely, and a prefix of a cached prompt, still evaluate their last token", async () => {
      const prompt = `${PREAMBLE}Lily said`;
      const first = await run(model.generate(params(prompt)));
      const again = await run(model.generate(params(prompt)));
      assert.equal(again.text, first.text);
      assert.equal(again.result.cachedPromptTokens, again.result.promptTokens - 1);
      const prefix = await run(model.generate(params(PREAMBLE)));
      assert.equal(prefix.result.cachedPromptTokens, prefix.result.promptTokens - 1);
      assert.ok(prefix.result.completionTokens > 0);
      assert.equal(prefix.text, (await reference(PREAMBLE)).text);
    });

    test("prompts that share a prefix and then differ: the prefix is copied, the other slot keeps its tail", async () => {
      const lily = `${PREAMBLE}Lily said`;
      const a = await run(model.generate(params(lily)));
      const copiesBefore = model.stats().prefixCopies;
      const tom = `${PREAMBLE}Tom was sad because`;
      const b = await run(model.generate(params(tom)));
      assert.equal(b.text, (await reference(tom)).text);
      assert.ok(b.result.cachedPromptTokens >= 90, `reused ${b.result.cachedPromptTokens}`);
      assert.equal(model.stats().prefixCopies, copiesBefore + 1);
      // Lily's conversation goes on from its own slot, whole.
      const next = `${lily}${a.text} Then`;
      const c = await run(model.generate(params(next)));
      assert.equal(c.text, (await reference(next)).text);
      assert.ok(c.result.promptTokens - c.result.cachedPromptTokens <= 3, JSON.stringify(c.result));
    });

    test("a slot that is still generating lends its prefix; neither answer changes", async () => {
      const long = `${PREAMBLE}The ball`;
      const running = model.generate(params(long, { maxTokens: 120, stopAtEog: false }));
      const it = running[Symbol.asyncIterator]();
      let longText = (await it.next()).value?.text ?? ""; // its prompt is in the cells now
      const copiesBefore = model.stats().prefixCopies;
      const other = `${PREAMBLE}A dog came and`;
      const side = await run(model.generate(params(other)));
      for (let r = await it.next(); !r.done; r = await it.next()) longText += r.value.text;
      assert.equal(side.text, (await reference(other)).text);
      assert.ok(side.result.cachedPromptTokens >= 90, `reused ${side.result.cachedPromptTokens}`);
      assert.equal(model.stats().prefixCopies, copiesBefore + 1);
      assert.equal(longText, (await reference(long, { maxTokens: 120, stopAtEog: false })).text);
    });

    test("four interleaved conversations on four slots each keep their cache", async () => {
      const openings = ["Tom had a red car.", "The cat sat on a mat.", "Sue went to the sea.", "A big dog ran fast."];
      const prompts = [...openings];
      let reusedAfterFirst = 0;
      let promptAfterFirst = 0;
      for (let turn = 0; turn < 3; turn++) {
        const outs = await Promise.all(prompts.map((p) => run(model.generate(params(p, { maxTokens: 16 })))));
        for (let i = 0; i < 4; i++) {
          assert.equal(outs[i]!.text, (await reference(prompts[i]!, { maxTokens: 16 })).text, `conv ${i} turn ${turn}`);
          if (turn > 0) {
            reusedAfterFirst += outs[i]!.result.cachedPromptTokens;
            promptAfterFirst += outs[i]!.result.promptTokens;
          }
          prompts[i] += `${outs[i]!.text} And`;
        }
      }
      assert.ok(reusedAfterFirst / promptAfterFirst >= 0.8, `hit rate ${reusedAfterFirst}/${promptAfterFirst}`);
      const slots = model.stats().slots!;
      assert.equal(slots.length, 4);
      assert.ok(slots.every((s) => !s.busy && s.cachedTokens > 0));
    });

    test("cachePrompt: false evaluates the whole prompt", async () => {
      const prompt = `${PREAMBLE}Lily said`;
      await run(model.generate(params(prompt)));
      const off = await run(model.generate(params(prompt, { cachePrompt: false })));
      assert.equal(off.result.cachedPromptTokens, 0);
    });
  });
}
