import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { STORIES_GOLDEN } from "../support/paths.js";
import { startTestDaemon, type TestDaemon } from "../support/daemon.js";

describe("OpenAI API with the official openai client", () => {
  let d: TestDaemon;
  let client: OpenAI;
  before(async () => {
    d = await startTestDaemon();
    client = new OpenAI({ baseURL: `${d.url}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  after(async () => d?.stop());

  test("models list names the imported model", async () => {
    const list = await client.models.list();
    assert.deepEqual(
      list.data.map((m) => m.id),
      ["stories:latest"],
    );
  });

  test("completion: greedy output matches the reference story", async () => {
    const r = await client.completions.create({
      model: "stories",
      prompt: "Once upon a time",
      max_tokens: 40,
      temperature: 0,
    });
    assert.ok(r.choices[0]!.text.startsWith(STORIES_GOLDEN), r.choices[0]!.text);
    assert.equal(r.choices[0]!.finish_reason, "length");
    assert.equal(r.usage?.completion_tokens, 40);
    assert.equal(r.usage?.prompt_tokens, 5);
  });

  test("completion streaming yields the same text, then [DONE]", async () => {
    const stream = await client.completions.create({
      model: "stories",
      prompt: "Once upon a time",
      max_tokens: 40,
      temperature: 0,
      stream: true,
    });
    let text = "";
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.ok(text.startsWith(STORIES_GOLDEN), text);
    assert.equal(finish, "length");
  });

  test("chat completion, non-streaming and streaming with usage", async () => {
    const r = await client.chat.completions.create({
      model: "stories",
      messages: [{ role: "user", content: "Tell me a story" }],
      max_tokens: 20,
      temperature: 0,
    });
    assert.equal(r.object, "chat.completion");
    assert.equal(r.choices[0]!.message.role, "assistant");
    assert.ok(r.choices[0]!.message.content!.length > 0);
    assert.equal(r.usage!.completion_tokens, 20);
    const stream = await client.chat.completions.create({
      model: "stories",
      messages: [{ role: "user", content: "Tell me a story" }],
      max_tokens: 20,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, r.choices[0]!.message.content);
    assert.equal(usage?.completion_tokens, 20);
  });

  test("stop sequences and seeds", async () => {
    const r = await client.completions.create({
      model: "stories",
      prompt: "Once upon a time",
      max_tokens: 40,
      temperature: 0,
      stop: ["Lily"],
    });
    assert.equal(r.choices[0]!.text, ", there was a little girl named ");
    assert.equal(r.choices[0]!.finish_reason, "stop");
    const a = await client.completions.create({
      model: "stories",
      prompt: "Once upon a time",
      max_tokens: 20,
      temperature: 1,
      seed: 42,
    });
    const b = await client.completions.create({
      model: "stories",
      prompt: "Once upon a time",
      max_tokens: 20,
      temperature: 1,
      seed: 42,
    });
    assert.equal(a.choices[0]!.text, b.choices[0]!.text);
  });

  test("embeddings (float and the client's default base64)", async () => {
    const r = await client.embeddings.create({ model: "stories", input: ["Once upon a time", "a big red ball"] });
    assert.equal(r.data.length, 2);
    assert.equal(r.data[0]!.embedding.length, 64);
    assert.notDeepEqual(r.data[0]!.embedding, r.data[1]!.embedding);
    const f = await client.embeddings.create({ model: "stories", input: "Once upon a time", encoding_format: "float" });
    assert.ok(Math.abs(f.data[0]!.embedding[0]! - r.data[0]!.embedding[0]!) < 1e-5);
    assert.equal(f.usage.prompt_tokens, 5, "BOS + 4 tokens, counted by the runner that embedded them");
    assert.ok(r.usage.prompt_tokens > f.usage.prompt_tokens);
  });

  test("an embedding input longer than the context is a 400 context_length_exceeded", async () => {
    await assert.rejects(
      client.embeddings.create({ model: "stories", input: "a b c d ".repeat(1500) }),
      (e: any) => e instanceof OpenAI.BadRequestError && e.code === "context_length_exceeded",
    );
  });

  test("unknown model is a 404 naming the model", async () => {
    await assert.rejects(
      client.chat.completions.create({ model: "nope", messages: [{ role: "user", content: "hi" }] }),
      (e: any) => e instanceof OpenAI.NotFoundError && /nope/.test(e.message) && e.code === "model_not_found",
    );
  });

  test("invalid parameters are a 400 in OpenAI's error shape", async () => {
    await assert.rejects(
      client.completions.create({ model: "stories", prompt: "x", temperature: 7 }),
      (e: any) =>
        e instanceof OpenAI.BadRequestError && e.code === "invalid_request" && e.type === "invalid_request_error",
    );
  });
});
