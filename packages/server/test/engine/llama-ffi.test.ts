/**
 * The llama-ffi engine against the real prebuilt libllama and real GGUF models (threads = 1).
 */
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { join, resolve } from "node:path";
import { createPrng, encodeF32, GgmlType, GgufValueType, typed, writeGguf } from "@llmos/gguf";
import {
  ContextOverflowError,
  EngineBusyError,
  InvalidInputError,
  type EngineModel,
  type GenerateChunk,
  type GenerateParams,
  type GenerateResult,
  type Generation,
  type SamplingOptions,
} from "../../src/engine/engine.js";
import { LlamaFfiEngine } from "../../src/engine/llama-ffi/index.js";

const repoRoot = resolve(fileURLToPath(import.meta.url), "../../../../..");
const stories = resolve(repoRoot, "../shared/models/stories260K.gguf");
const tinyRandom = resolve(repoRoot, "../shared/models/llama-2-tiny-random.gguf");
const EXPECTED = ", there was a little girl named Lily. She loved to play outside in the park.";

const greedy: SamplingOptions = {
  temperature: 0,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repeatPenalty: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
  penaltyLastN: 64,
};

function params(p: Partial<GenerateParams>): GenerateParams {
  return { prompt: "Once upon a time", maxTokens: 40, sampling: greedy, stop: [], ...p };
}

async function collect(g: Generation): Promise<{ text: string; chunks: GenerateChunk[]; result: GenerateResult }> {
  const chunks: GenerateChunk[] = [];
  for await (const c of g) chunks.push(c);
  return { text: chunks.map((c) => c.text).join(""), chunks, result: await g.result };
}

describe("llama-ffi engine", { skip: existsSync(stories) ? false : `missing ${stories}` }, () => {
  let engine: LlamaFfiEngine;
  let model: EngineModel;

  before(async () => {
    engine = await LlamaFfiEngine.create({});
    model = await engine.load({ modelPath: stories, contextSize: 1024, slots: 4, threads: 1, gpuLayers: 0 });
  });

  after(async () => {
    await engine?.dispose();
  });

  test("facts come from the model", () => {
    assert.equal(engine.name, "llama-ffi");
    assert.deepEqual(model.facts, {
      trainContextSize: 2048,
      vocabSize: 512,
      embeddingSize: 64,
      bosToken: 1,
      eosToken: 2,
      bosText: "<s>",
      eosText: "</s>",
    });
  });

  test("tokenize / detokenize", () => {
    assert.deepEqual(model.tokenize("Once upon a time"), [403, 407, 261, 378]);
    assert.deepEqual(model.tokenize("Once upon a time", { addBos: true }), [1, 403, 407, 261, 378]);
    assert.equal(model.detokenize([403, 407, 261, 378]), "Once upon a time");
  });

  test("greedy completion of 'Once upon a time' with BOS", async () => {
    const { text, result, chunks } = await collect(model.generate(params({ maxTokens: 30 })));
    assert.ok(text.startsWith(EXPECTED), JSON.stringify(text));
    assert.equal(result.finishReason, "length");
    assert.equal(result.completionTokens, 30);
    assert.equal(result.promptTokens, 5); // BOS + 4
    assert.equal(
      chunks.reduce((n, c) => n + c.tokens, 0),
      30,
    );
    assert.ok(result.promptMs >= 0 && result.generateMs >= 0);
  });

  test("a pre-tokenized prompt gives the same text", async () => {
    const { text } = await collect(model.generate(params({ prompt: [1, 403, 407, 261, 378], maxTokens: 30 })));
    assert.ok(text.startsWith(EXPECTED), JSON.stringify(text));
  });

  test("stop strings end the text before the stop string, even across tokens", async () => {
    const a = await collect(model.generate(params({ stop: ["Lily"] })));
    assert.equal(a.text, ", there was a little girl named ");
    assert.equal(a.result.finishReason, "stop");
    // " park" spans several tokens; the held-back prefix is never emitted.
    const b = await collect(model.generate(params({ stop: ["xyz", " park"] })));
    assert.equal(b.text, ", there was a little girl named Lily. She loved to play outside in the");
    assert.equal(b.result.finishReason, "stop");
    assert.ok(b.chunks.every((c) => !c.text.includes("park")));
  });

  test("maxTokens ends with 'length'", async () => {
    const { result } = await collect(model.generate(params({ maxTokens: 5 })));
    assert.equal(result.finishReason, "length");
    assert.equal(result.completionTokens, 5);
  });

  test("prompts longer than a sequence's context throw ContextOverflowError", () => {
    const long = Array.from({ length: 300 }, () => 403);
    assert.throws(() => model.generate(params({ prompt: long })), ContextOverflowError);
  });

  test("logprobs: sampled token and top-N alternatives", async () => {
    const { chunks } = await collect(model.generate(params({ maxTokens: 3, logprobs: 2 })));
    const lps = chunks.flatMap((c) => c.logprobs ?? []);
    assert.equal(lps.length, 3);
    for (const lp of lps) {
      assert.equal(lp.top.length, 2);
      assert.ok(lp.logprob <= 0 && lp.logprob > -5);
      // Greedy picks the most likely token.
      assert.equal(lp.top[0]!.token, lp.token);
      assert.ok(Math.abs(lp.top[0]!.logprob - lp.logprob) < 1e-9);
      assert.ok(lp.top[1]!.logprob <= lp.top[0]!.logprob);
    }
    assert.equal(lps[0]!.token, ",");
  });

  test("4 concurrent generations share decode batches; a 5th is refused", async () => {
    const before = model.stats();
    const gens = [0, 1, 2, 3].map(() => model.generate(params({ maxTokens: 30 })));
    assert.throws(() => model.generate(params({})), EngineBusyError);
    const outs = await Promise.all(gens.map(collect));
    for (const o of outs) {
      assert.equal(o.result.finishReason, "length");
      assert.equal(o.result.completionTokens, 30);
      assert.ok(o.text.startsWith(", there was a little girl"), o.text);
    }
    const after = model.stats();
    assert.ok(after.multiSequenceBatches > before.multiSequenceBatches);
    assert.equal(after.maxSequencesInBatch, 4);
    assert.equal(after.tokensGenerated - before.tokensGenerated, 120);
    // Each prompt token was either evaluated or found in a slot's cached cells (the slots hold earlier tests' work).
    const evaluated = after.promptTokens - before.promptTokens;
    assert.equal(evaluated + after.cachedPromptTokens - before.cachedPromptTokens, 20);
    assert.ok(evaluated >= 4, "at least each prompt's last token is evaluated");
    // All slots are free again.
    const again = await collect(model.generate(params({ maxTokens: 30 })));
    assert.ok(again.text.startsWith(EXPECTED));
  });

  test("json_schema grammar output parses and follows the schema", async () => {
    const schema = { type: "object", properties: { name: { type: "string" }, ok: { type: "boolean" } } };
    const { text, result } = await collect(
      model.generate(params({ maxTokens: 120, grammar: { type: "json_schema", schema } })),
    );
    assert.equal(result.finishReason, "stop");
    const value = JSON.parse(text) as { name: unknown; ok: unknown };
    assert.deepEqual(Object.keys(value), ["name", "ok"]);
    assert.equal(typeof value.name, "string");
    assert.equal(typeof value.ok, "boolean");
  });

  test("gbnf and json grammars constrain the output", async () => {
    const yesNo = await collect(
      model.generate(params({ grammar: { type: "gbnf", grammar: 'answer ::= "yes" | "no"', root: "answer" } })),
    );
    assert.ok(yesNo.text === "yes" || yesNo.text === "no", yesNo.text);
    assert.equal(yesNo.result.finishReason, "stop");
    // This story model never closes a JSON object within a few tokens; the grammar still forces JSON syntax.
    const json = await collect(model.generate(params({ maxTokens: 8, grammar: { type: "json" } })));
    assert.match(json.text, /^\{\s*"/);
    assert.throws(() => model.generate(params({ grammar: { type: "gbnf", grammar: "root ::= (" } })), /grammar/);
  });

  test("seeded sampling with temperature > 0 is reproducible", async () => {
    const sampling = { ...greedy, temperature: 1, seed: 1234 };
    const a = await collect(model.generate(params({ sampling })));
    const b = await collect(model.generate(params({ sampling })));
    const c = await collect(model.generate(params({ sampling: { ...sampling, seed: 99 } })));
    assert.equal(a.text, b.text);
    assert.notEqual(a.text, c.text);
  });

  test("embed returns a mean-pooled vector of embeddingSize", async () => {
    const a = (await model.embed("Once upon a time")).vector;
    const b = (await model.embed("Once upon a time")).vector;
    const c = (await model.embed("The dog ran to the park.")).vector;
    assert.equal(a.length, model.facts.embeddingSize);
    assert.ok(a.every(Number.isFinite));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    const norm = Math.hypot(...a);
    assert.ok(Math.abs(norm - 1) > 1e-3, "not normalised");
  });

  test("a long input embedded in chunks has the same mean; cancellation stops between chunks; truncate cuts", async () => {
    const text = "The dog ran to the park and played with a ball. ".repeat(12);
    const whole = await model.embed(text);
    assert.ok(whole.tokens > 100 && whole.tokens <= 256, `${whole.tokens} tokens`);
    const chunked = await LlamaFfiEngine.create({ embedChunk: 32 });
    try {
      const m = await chunked.load({ modelPath: stories, contextSize: 1024, slots: 4, threads: 1, gpuLayers: 0 });
      const parts = await m.embed(text);
      assert.equal(parts.tokens, whole.tokens);
      const diff = Math.max(...parts.vector.map((x, i) => Math.abs(x - whole.vector[i]!)));
      assert.ok(diff < 1e-4, `chunked and whole means differ by ${diff}`);
      let checks = 0;
      await assert.rejects(
        m.embed(text, { isCancelled: () => ++checks > 2 }),
        (e: Error) => e.name === "CancelledError",
      );
      assert.equal(checks, 3, "checked before each chunk, stopped at the third");
    } finally {
      await chunked.dispose();
    }
    const long = "The dog ran to the park. ".repeat(100);
    await assert.rejects(model.embed(long), ContextOverflowError);
    const cut = await model.embed(long, { truncate: true });
    assert.equal(cut.tokens, 256);
  });

  test("token ids outside the vocabulary are the caller's error, not a failed decode", async () => {
    assert.throws(
      () => model.generate(params({ prompt: [1, 512] })),
      (e: Error) => e instanceof InvalidInputError && /outside the vocabulary of 512/.test(e.message),
    );
    assert.throws(() => model.generate(params({ prompt: [1, -1] })), InvalidInputError);
    const ok = await collect(model.generate(params({ prompt: [1, 400], maxTokens: 2 })));
    assert.equal(ok.result.completionTokens, 2);
  });
});

describe("llama-ffi cancellation", { skip: existsSync(stories) ? false : `missing ${stories}` }, () => {
  test("cancel mid-generation ends quickly with 'cancelled' and the only sequence is reusable", async () => {
    const engine = await LlamaFfiEngine.create({});
    try {
      const model = await engine.load({ modelPath: stories, contextSize: 512, slots: 1, threads: 1, gpuLayers: 0 });
      const g = model.generate(params({ maxTokens: 400 }));
      let chunks = 0;
      for await (const c of g) {
        void c;
        if (++chunks === 3) g.cancel();
      }
      const r = await g.result;
      assert.equal(r.finishReason, "cancelled");
      assert.ok(r.completionTokens < 10, `stopped after ${r.completionTokens} tokens`);
      // Same single slot, clean KV cache: the greedy text is unchanged.
      const again = await collect(model.generate(params({ maxTokens: 30 })));
      assert.ok(again.text.startsWith(EXPECTED), again.text);
      // Breaking out of the iteration cancels too.
      const h = model.generate(params({ maxTokens: 400 }));
      for await (const c of h) {
        void c;
        break;
      }
      assert.equal((await h.result).finishReason, "cancelled");
      await model.dispose();
      await model.dispose();
      assert.throws(() => model.generate(params({})), /disposed/);
    } finally {
      await engine.dispose();
      await engine.dispose();
    }
  });

  test("a sequence that fills its share of the context ends with 'length'", async () => {
    const engine = await LlamaFfiEngine.create({});
    try {
      // 128 cells for 2 sequences: 64 positions each.
      const model = await engine.load({ modelPath: stories, contextSize: 128, slots: 2, threads: 1, gpuLayers: 0 });
      const { result } = await collect(model.generate(params({ maxTokens: 500, stopAtEog: false })));
      assert.equal(result.finishReason, "length");
      assert.equal(result.promptTokens + result.completionTokens, 65); // 64 positions decoded + the last sampled token
      assert.throws(
        () => model.generate(params({ prompt: Array.from({ length: 64 }, () => 403) })),
        ContextOverflowError,
      );
    } finally {
      await engine.dispose();
    }
  });

  test("embed runs between decode steps of running generations; logs reach the logger", async () => {
    const logs: string[] = [];
    const engine = await LlamaFfiEngine.create({ logger: (level, msg) => logs.push(`${level}: ${msg}`) });
    try {
      const model = await engine.load({
        modelPath: stories,
        contextSize: 512,
        slots: 2,
        threads: 1,
        gpuLayers: 0,
        embeddings: true,
      });
      assert.ok(
        logs.some((l) => l.includes("llama")),
        "llama.cpp logged while loading",
      );
      const g = model.generate(params({ maxTokens: 60 }));
      const [vec, out] = await Promise.all([model.embed("Once upon a time"), collect(g)]);
      assert.equal(vec.vector.length, 64);
      assert.ok(out.text.startsWith(EXPECTED), out.text);
    } finally {
      await engine.dispose();
    }
  });

  test("async decode mode gives the same greedy text", async () => {
    const engine = await LlamaFfiEngine.create({ decodeMode: "async" });
    try {
      const model = await engine.load({ modelPath: stories, contextSize: 512, slots: 2, threads: 1, gpuLayers: 0 });
      const [a, b] = await Promise.all([
        collect(model.generate(params({ maxTokens: 30 }))),
        collect(model.generate(params({ maxTokens: 30 }))),
      ]);
      assert.ok(a.text.startsWith(EXPECTED), a.text);
      assert.ok(b.text.startsWith(EXPECTED), b.text);
    } finally {
      await engine.dispose();
    }
  });
});

describe("llama-ffi LoRA adapters", { skip: existsSync(stories) ? false : `missing ${stories}` }, () => {
  test("an adapter changes the output at scale 1 and not at scale 0", async () => {
    // A rank-4 LoRA on layer 0's attention projections of stories260K (dim 64), random weights.
    const dir = mkdtempSync(join(tmpdir(), "llmos-ffi-lora-"));
    const adapter = join(dir, "adapter.gguf");
    const rnd = createPrng(7);
    const weights = (n: number): Uint8Array => encodeF32(Float32Array.from({ length: n }, () => (rnd() - 0.5) * 2));
    const tensors = ["attn_q", "attn_output"].flatMap((t) => [
      { name: `blk.0.${t}.weight.lora_a`, dims: [64, 4], type: GgmlType.F32, data: weights(64 * 4) },
      { name: `blk.0.${t}.weight.lora_b`, dims: [4, 64], type: GgmlType.F32, data: weights(4 * 64) },
    ]);
    await writeGguf(adapter, {
      metadata: {
        "general.architecture": "llama",
        "general.type": "adapter",
        "adapter.type": "lora",
        "adapter.lora.alpha": typed(GgufValueType.FLOAT32, 4),
      },
      tensors,
    });
    const engine = await LlamaFfiEngine.create({});
    try {
      const load = (scale: number): Promise<EngineModel> =>
        engine.load({
          modelPath: stories,
          contextSize: 256,
          slots: 1,
          threads: 1,
          gpuLayers: 0,
          loraAdapters: [{ path: adapter, scale }],
        });
      const on = await load(1);
      const changed = await collect(on.generate(params({ maxTokens: 30 })));
      assert.ok(!changed.text.startsWith(EXPECTED), changed.text);
      await on.dispose();
      const off = await load(0);
      const same = await collect(off.generate(params({ maxTokens: 30 })));
      assert.ok(same.text.startsWith(EXPECTED), same.text);
      await assert.rejects(
        engine.load({
          modelPath: stories,
          contextSize: 256,
          slots: 1,
          threads: 1,
          gpuLayers: 0,
          loraAdapters: [{ path: join(dir, "missing.gguf"), scale: 1 }],
        }),
        /LoRA/,
      );
    } finally {
      await engine.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe(
  "llama-ffi with llama-2-tiny-random",
  { skip: existsSync(tinyRandom) ? false : `missing ${tinyRandom}` },
  () => {
    test("loads (32k vocabulary), tokenizes and generates", async () => {
      const engine = await LlamaFfiEngine.create({});
      try {
        const model = await engine.load({
          modelPath: tinyRandom,
          contextSize: 256,
          slots: 1,
          threads: 1,
          gpuLayers: 0,
        });
        assert.equal(model.facts.vocabSize, 32000);
        const tokens = model.tokenize("Hello world");
        assert.ok(tokens.length >= 2 && tokens.every((t) => t >= 0 && t < 32000));
        assert.equal(model.detokenize(tokens), "Hello world");
        const { result } = await collect(model.generate(params({ prompt: "Hello", maxTokens: 8, stopAtEog: false })));
        assert.equal(result.completionTokens, 8);
      } finally {
        await engine.dispose();
      }
    });
  },
);

describe("llama-ffi idle threadpool", { skip: existsSync(stories) ? false : `missing ${stories}` }, () => {
  test("after its last generation a model's decode threads sleep instead of busy-polling", async () => {
    const engine = await LlamaFfiEngine.create({});
    try {
      // Two threads: one ggml worker besides the calling thread (one thread has no worker to poll).
      const model = await engine.load({ modelPath: stories, contextSize: 256, slots: 1, threads: 2, gpuLayers: 0 });
      await collect(model.generate(params({ maxTokens: 64, stopAtEog: false })));
      const before = process.cpuUsage();
      await new Promise((r) => setTimeout(r, 300));
      const used = process.cpuUsage(before);
      const ms = (used.user + used.system) / 1000;
      // A polling worker spins for about 85 ms after each decode (measured 171 ms of CPU in the next second with
      // 2 threads); a paused one costs nothing.
      assert.ok(ms < 40, `${ms.toFixed(1)} ms of CPU in the 300 ms after the generation`);
    } finally {
      await engine.dispose();
    }
  });
});

describe("llama-ffi CPU allotments", { skip: existsSync(stories) ? false : `missing ${stories}` }, () => {
  test("the thread count changes between decode steps without changing the greedy text; contended steps are counted", async () => {
    const engine = await LlamaFfiEngine.create({});
    try {
      const model = await engine.load({ modelPath: stories, contextSize: 512, slots: 2, threads: 2, gpuLayers: 0 });
      const g = model.generate(params({ maxTokens: 30 }));
      const chunks: GenerateChunk[] = [];
      let n = 0;
      for await (const c of g) {
        chunks.push(c);
        // Switch on several steps, as other models become busy and idle: 2 -> 1 -> 2 -> 1 threads.
        if (n === 0) await model.setCpuAllotment({ threads: 1, shared: true });
        if (n === 2) await model.setCpuAllotment({ threads: 2, shared: false });
        if (n === 4) await model.setCpuAllotment({ threads: 1, shared: true });
        n++;
      }
      assert.ok(
        chunks
          .map((c) => c.text)
          .join("")
          .startsWith(EXPECTED),
      );
      const stats = model.stats();
      assert.ok(stats.contendedBatches > 0, "steps after a shared allotment are contended");
      assert.ok(stats.contendedBatches < stats.decodeBatches, "steps alone are not");
      // The embedding context made later decodes on the threads allotted now; switching again moves it too.
      const a = await model.embed("Once upon a time");
      await model.setCpuAllotment({ threads: 2, shared: false });
      assert.deepEqual(await model.embed("Once upon a time"), a);
      const again = await collect(model.generate(params({ maxTokens: 30 })));
      assert.ok(again.text.startsWith(EXPECTED));
      // The pools not attached sleep: an idle model costs no CPU after all these switches.
      const before = process.cpuUsage();
      await new Promise((r) => setTimeout(r, 300));
      const used = process.cpuUsage(before);
      assert.ok((used.user + used.system) / 1000 < 40, "no threadpool polls while the model is idle");
      await assert.rejects(model.setCpuAllotment({ threads: -1, shared: false }), RangeError);
    } finally {
      await engine.dispose();
    }
  });

  test("an allotment of 0 threads holds decoding (a cancel still ends a generation) until threads come back", async () => {
    const engine = await LlamaFfiEngine.create({});
    try {
      const model = await engine.load({ modelPath: stories, contextSize: 512, slots: 2, threads: 1, gpuLayers: 0 });
      await model.setCpuAllotment({ threads: 0, shared: true });
      const held = model.generate(params({ maxTokens: 30 }));
      const cancelled = model.generate(params({ maxTokens: 30 }));
      const before = model.stats().decodeBatches;
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(model.stats().decodeBatches, before, "nothing decodes while held");
      cancelled.cancel();
      assert.equal((await cancelled.result).finishReason, "cancelled");
      await model.setCpuAllotment({ threads: 1, shared: false });
      const { text, result } = await collect(held);
      assert.ok(text.startsWith(EXPECTED), text);
      assert.equal(result.completionTokens, 30);
    } finally {
      await engine.dispose();
    }
  });
});
