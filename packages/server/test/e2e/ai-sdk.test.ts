import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createOpenAI } from "@ai-sdk/openai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { APICallError, embedMany, generateObject, generateText, streamObject, streamText, tool } from "ai";
import { z } from "zod";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";

/**
 * The Vercel AI SDK as a caller: `@ai-sdk/openai-compatible` (chat completions) and `@ai-sdk/openai` (whose default
 * model speaks the Responses API). A tiny model writes nonsense, so the assertions are what llmos guarantees:
 * objects that match their zod schemas, tool-call shapes, the same greedy text streamed or not, typed errors, usage.
 */
(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

const Recipe = z.object({
  title: z.string().min(1).max(24),
  servings: z.number().int().min(1).max(8),
  minutes: z.number().int().positive().max(240),
  difficulty: z.enum(["easy", "medium", "hard"]),
  rating: z.number().min(0).max(5),
  steps: z
    .array(z.object({ order: z.number().int().min(1).max(9), text: z.string().max(40) }))
    .min(1)
    .max(3),
  tags: z.array(z.string().max(10)).max(2),
});

const weather = tool({
  description: "Weather for a city",
  inputSchema: z.object({
    city: z.string().min(1).max(16),
    days: z.number().int().min(1).max(7),
    unit: z.enum(["c", "f"]),
  }),
});

describe("Vercel AI SDK (ai, @ai-sdk/openai-compatible, @ai-sdk/openai)", () => {
  let d: TestDaemon;
  let compat: ReturnType<typeof createOpenAICompatible>;
  let openai: ReturnType<typeof createOpenAI>;
  before(async () => {
    d = await startTestDaemon({ contextSize: 1024 });
    compat = createOpenAICompatible({
      name: "llmos",
      baseURL: `${d.url}/v1`,
      apiKey: "unused",
      supportsStructuredOutputs: true,
      includeUsage: true,
    });
    openai = createOpenAI({ baseURL: `${d.url}/v1`, apiKey: "unused" });
  });
  after(async () => d?.stop());

  test("generateText and streamText give the same greedy text, with usage, on both providers", async () => {
    for (const model of [compat.chatModel("stories"), openai("stories")]) {
      const opts = { model, prompt: "Once upon a time", maxOutputTokens: 24, temperature: 0, maxRetries: 0 };
      const plain = await generateText(opts);
      assert.ok(plain.text.length > 0);
      assert.equal(plain.finishReason, "length");
      assert.equal(plain.usage.outputTokens, 24);
      assert.ok((plain.usage.inputTokens ?? 0) > 0);
      const streamed = streamText(opts);
      let text = "";
      for await (const piece of streamed.textStream) text += piece;
      assert.equal(text, plain.text, model.modelId);
      assert.equal((await streamed.usage).outputTokens, 24);
    }
  });

  test("generateObject with zod (.int, .min, .max, .enum, nested objects and arrays) on both providers", async () => {
    for (const model of [compat.chatModel("stories"), openai("stories")]) {
      for (const seed of [1, 2]) {
        const r = await generateObject({
          model,
          schema: Recipe,
          prompt: "A recipe",
          temperature: 1,
          seed,
          maxRetries: 0,
          maxOutputTokens: 500,
        });
        assert.ok(Recipe.safeParse(r.object).success, JSON.stringify(r.object));
        assert.equal(r.finishReason, "stop");
      }
    }
  });

  test("streamObject: partial objects while streaming, a final object matching the schema", async () => {
    const r = streamObject({
      model: compat.chatModel("stories"),
      schema: Recipe,
      prompt: "A recipe",
      temperature: 0.8,
      seed: 4,
      maxRetries: 0,
      maxOutputTokens: 500,
    });
    let partials = 0;
    for await (const _ of r.partialObjectStream) partials++;
    assert.ok(partials > 1);
    assert.ok(Recipe.safeParse(await r.object).success);
  });

  test("tools with bounded zod parameters: a required call has a valid input, on both providers", async () => {
    for (const model of [compat.chatModel("stories"), openai("stories")]) {
      const r = await generateText({
        model,
        tools: { weather },
        toolChoice: "required",
        prompt: "Weather in Rome?",
        temperature: 0,
        maxRetries: 0,
        maxOutputTokens: 200,
      });
      assert.equal(r.toolCalls.length, 1, model.modelId);
      const call = r.toolCalls[0]!;
      assert.equal(call.toolName, "weather");
      assert.ok(
        weather.inputSchema && (weather.inputSchema as z.ZodType).safeParse(call.input).success,
        JSON.stringify(call.input),
      );
      assert.equal(r.finishReason, "tool-calls");
    }
  });

  test("abort mid-stream: the stream stops early and the slot is given back", async () => {
    const controller = new AbortController();
    const r = streamText({
      model: compat.chatModel("stories"),
      prompt: "Once upon a time",
      maxOutputTokens: 2000,
      temperature: 0.7,
      // openai-compatible puts its provider options into the request body: llmos' ignore_eos keeps it going.
      providerOptions: { llmos: { ignore_eos: true } },
      abortSignal: controller.signal,
      maxRetries: 0,
    });
    let pieces = 0;
    try {
      for await (const _ of r.textStream) {
        if (++pieces === 3) controller.abort();
      }
    } catch (error) {
      assert.equal((error as Error).name, "AbortError");
    }
    assert.ok(pieces >= 3 && pieces < 100, `stopped after ${pieces} pieces`);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ps = await api(d, "GET", "/api/ps");
      const busy = ps.json.models.reduce((n: number, m: { slotsBusy: number }) => n + m.slotsBusy, 0);
      if (busy === 0) break;
      assert.ok(Date.now() < deadline, "the aborted generation still holds its slot");
      await new Promise((res) => setTimeout(res, 100));
    }
  });

  test("embedMany: one vector per value, in order", async () => {
    const values = ["a cat", "a dog", "a big red ball"];
    const r = await embedMany({ model: compat.textEmbeddingModel("stories"), values, maxRetries: 0 });
    assert.equal(r.embeddings.length, 3);
    assert.ok(r.embeddings.every((e) => e.length === r.embeddings[0]!.length && e.length > 0));
    assert.ok((r.usage?.tokens ?? 0) > 0);
  });

  test("typed errors: context overflow is an APICallError with OpenAI's wording and the stable code", async () => {
    const long = "word ".repeat(3000);
    await assert.rejects(
      generateText({ model: compat.chatModel("stories"), prompt: long, maxRetries: 0 }),
      (e: unknown) =>
        APICallError.isInstance(e) &&
        e.statusCode === 400 &&
        /maximum context length is \d+ tokens/.test(e.message) &&
        /"code":"context_length_exceeded"/.test(e.responseBody ?? ""),
    );
    await assert.rejects(
      generateText({ model: openai("missing-model"), prompt: "x", maxRetries: 0 }),
      (e: unknown) => APICallError.isInstance(e) && e.statusCode === 404,
    );
  });
});
