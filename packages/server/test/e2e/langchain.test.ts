import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { tool } from "@langchain/core/tools";
import { ChatOllama, OllamaEmbeddings } from "@langchain/ollama";
import { ChatOpenAI, OpenAIEmbeddings } from "@langchain/openai";
import { z } from "zod";
import { startTestDaemon, type TestDaemon } from "../support/daemon.js";

/**
 * LangChain.js as a caller: `@langchain/openai` (ChatOpenAI, OpenAIEmbeddings) and `@langchain/ollama`
 * (ChatOllama, OllamaEmbeddings). The assertions are what llmos guarantees, not what the tiny model says.
 */
const Person = z.object({
  name: z.string().min(1).max(16),
  age: z.number().int().min(0).max(120),
  pet: z.enum(["cat", "dog", "none"]),
  friends: z.array(z.object({ name: z.string().max(10), close: z.boolean() })).max(2),
});

const lookup = tool(async () => "sunny", {
  name: "lookup_weather",
  description: "Weather for a city",
  schema: z.object({ city: z.string().min(1).max(12), days: z.number().int().min(1).max(5) }),
});

describe("LangChain.js (@langchain/openai, @langchain/ollama)", () => {
  let d: TestDaemon;
  let openai: (extra?: Record<string, unknown>) => ChatOpenAI;
  let ollama: (extra?: Record<string, unknown>) => ChatOllama;
  before(async () => {
    d = await startTestDaemon({ contextSize: 1024 });
    openai = (extra = {}) =>
      new ChatOpenAI({
        model: "stories",
        apiKey: "unused",
        configuration: { baseURL: `${d.url}/v1` },
        temperature: 0,
        maxTokens: 20,
        maxRetries: 0,
        ...extra,
      });
    ollama = (extra = {}) =>
      new ChatOllama({ model: "stories", baseUrl: d.url, temperature: 0, numPredict: 20, ...extra });
  });
  after(async () => d?.stop());

  test("invoke and stream give the same greedy text, with usage, on both chat models", async () => {
    for (const chat of [openai(), ollama()]) {
      const message = await chat.invoke("Once upon a time");
      assert.equal(typeof message.content, "string");
      assert.ok((message.content as string).length > 0);
      assert.equal(message.usage_metadata?.output_tokens, 20);
      let streamed = "";
      for await (const chunk of await chat.stream("Once upon a time")) streamed += chunk.content as string;
      assert.equal(streamed, message.content, chat.constructor.name);
    }
  });

  test("batch answers each input in order", async () => {
    // Few tokens: batched greedy decoding may drift from single-sequence decoding late in a text.
    for (const chat of [openai({ maxTokens: 6 }), ollama({ numPredict: 6 })] as BaseChatModel[]) {
      const prompts = ["Once upon a time", "Lily saw a cat", "Tom ran"];
      const answers = await chat.batch(prompts);
      assert.equal(answers.length, 3);
      const single = await chat.invoke(prompts[1]!);
      assert.equal(answers[1]!.content, single.content, "greedy: the same answer alone or in a batch");
    }
  });

  test("withStructuredOutput (zod with int, min, max, enum, nested arrays): always a valid object", async () => {
    const runs = [
      openai({ temperature: 1, maxTokens: 400 }).withStructuredOutput(Person, { method: "jsonSchema" }),
      openai({ temperature: 1, maxTokens: 400 }).withStructuredOutput(Person, { method: "functionCalling" }),
      ollama({ temperature: 1, numPredict: 400 }).withStructuredOutput(Person),
    ];
    for (const run of runs)
      for (const seed of [1, 2]) {
        const person = await run.invoke(`A person, number ${seed}`);
        assert.ok(Person.safeParse(person).success, JSON.stringify(person));
      }
  });

  test("bindTools: a required call has arguments matching the tool's schema (OpenAI); Ollama answers in the same shape", async () => {
    const chat = openai({ maxTokens: 200 }).bindTools([lookup], { tool_choice: "required" });
    const message = await chat.invoke("Weather in Oslo for two days?");
    assert.equal(message.tool_calls?.length, 1);
    const call = message.tool_calls![0]!;
    assert.equal(call.name, "lookup_weather");
    assert.match(call.id ?? "", /^call_/);
    assert.ok(lookup.schema.safeParse(call.args).success, JSON.stringify(call.args));
    const result = await lookup.invoke(call);
    assert.equal(result.content, "sunny");

    const free = await ollama().bindTools([lookup]).invoke("Tell me a story");
    assert.ok(Array.isArray(free.tool_calls));
    assert.equal(typeof free.content, "string");
  });

  test("abort: a stream aborted after its first chunk stops, an aborted invoke rejects, and the daemon goes on", async () => {
    // ignore_eos (an llmos extension, passed through modelKwargs) keeps the generation going until aborted.
    const long = openai({ maxTokens: 4000, modelKwargs: { ignore_eos: true } });
    const controller = new AbortController();
    let chunks = 0;
    await assert.rejects(async () => {
      for await (const _ of await long.stream("Once upon a time", { signal: controller.signal })) {
        if (++chunks === 1) controller.abort();
      }
    }, /abort/i);
    assert.ok(chunks < 50, `${chunks} chunks after the abort`);
    for (const chat of [openai(), ollama()]) {
      const gone = new AbortController();
      const pending = chat.invoke("Once upon a time", { signal: gone.signal });
      gone.abort();
      await assert.rejects(pending, /abort/i);
      const next = await chat.invoke("Tom ran");
      assert.ok((next.content as string).length > 0);
    }
  });

  test("OpenAIEmbeddings and OllamaEmbeddings: one vector per document, the query's like a document's", async () => {
    const docs = ["a cat sat", "a dog ran", "the sun"];
    for (const embeddings of [
      new OpenAIEmbeddings({
        model: "stories",
        apiKey: "unused",
        configuration: { baseURL: `${d.url}/v1` },
        maxRetries: 0,
      }),
      new OllamaEmbeddings({ model: "stories", baseUrl: d.url }),
    ]) {
      const vectors = await embeddings.embedDocuments(docs);
      assert.equal(vectors.length, 3);
      assert.ok(vectors.every((v) => v.length === vectors[0]!.length && v.length > 0));
      const query = await embeddings.embedQuery("a dog ran");
      const close = vectors[1]!.every((x, i) => Math.abs(x - query[i]!) < 1e-4);
      assert.ok(close, `${embeddings.constructor.name}: same text, same vector`);
    }
  });

  test("typed errors: a prompt longer than the context is LangChain's ContextOverflowError (OpenAI), Ollama's words (Ollama)", async () => {
    const long = "word ".repeat(3000);
    await assert.rejects(openai().invoke(long), (e: Error) => {
      assert.equal(e.name, "ContextOverflowError");
      assert.match(e.message, /maximum context length is \d+ tokens/);
      return true;
    });
    await assert.rejects(ollama().invoke(long), /the input length exceeds the context length/);
  });
});
