/**
 * The prompt cache as API clients see it, on a real daemon and runner (stories260K), with the official openai and
 * ollama clients: a chat resent with one more turn reuses the conversation's KV cells and says so
 * (`usage.prompt_tokens_details.cached_tokens`, the Responses API's `usage.input_tokens_details.cached_tokens`,
 * Ollama's `prompt_eval_cached_count`), the answers are those of
 * the same request with `cache_prompt: false`, and /api/ps and /metrics show the hit rate. A daemon with
 * LLMOS_PROMPT_CACHE=off reuses nothing.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { Ollama } from "ollama";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";

type ChatMessage = { role: "system" | "user" | "assistant"; content: string };
const SYSTEM: ChatMessage = {
  role: "system",
  content: "You tell short stories about Lily, a little girl who loves to play outside in the park with her dog.",
};

describe("prompt cache through the APIs", () => {
  let d: TestDaemon;
  let openai: OpenAI;
  let ollama: Ollama;
  before(async () => {
    d = await startTestDaemon();
    openai = new OpenAI({ baseURL: `${d.url}/v1`, apiKey: "unused", maxRetries: 0 });
    ollama = new Ollama({ host: d.url });
  });
  after(async () => d?.stop());

  /** One chat turn; `cache_prompt` is llama-server's extension, sent as an extra body field. */
  const chat = (messages: ChatMessage[], cache = true) =>
    openai.chat.completions.create({
      model: "stories",
      messages,
      max_tokens: 16,
      temperature: 0,
      ...(cache ? {} : { cache_prompt: false }),
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);

  test("OpenAI: each turn of a conversation reuses the previous ones; answers are unchanged", async () => {
    const messages: ChatMessage[] = [SYSTEM, { role: "user", content: "Tell me a story." }];
    for (let turn = 0; turn < 3; turn++) {
      const cached = await chat(messages);
      const plain = await chat(messages, false);
      assert.equal(cached.choices[0]!.message.content, plain.choices[0]!.message.content, `turn ${turn}`);
      assert.equal(cached.usage!.prompt_tokens, plain.usage!.prompt_tokens);
      assert.equal(plain.usage!.prompt_tokens_details?.cached_tokens, 0);
      const hit = cached.usage!.prompt_tokens_details!.cached_tokens!;
      if (turn > 0) assert.ok(hit >= plain.usage!.prompt_tokens / 2, `turn ${turn}: ${hit} cached`);
      messages.push({ role: "assistant", content: cached.choices[0]!.message.content ?? "" });
      messages.push({ role: "user", content: "And then?" });
    }
  });

  test("OpenAI streaming: the usage chunk carries cached_tokens", async () => {
    const messages: ChatMessage[] = [SYSTEM, { role: "user", content: "A story about a red ball." }];
    await chat(messages);
    const stream = await openai.chat.completions.create({
      model: "stories",
      messages,
      max_tokens: 8,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) usage = chunk.usage ?? usage;
    assert.equal(usage!.prompt_tokens_details!.cached_tokens, usage!.prompt_tokens - 1);
  });

  test("Responses API: a turn after previous_response_id reuses the earlier turn (input_tokens_details)", async () => {
    const ask = (input: string, extra: Record<string, unknown> = {}) =>
      openai.responses.create({
        model: "stories",
        instructions: SYSTEM.content,
        input,
        max_output_tokens: 8,
        temperature: 0,
        ...extra,
      } as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    const first = await ask("Tell me a story about a cat.");
    const next = { previous_response_id: first.id };
    const cached = await ask("And then?", next);
    const plain = await ask("And then?", { ...next, cache_prompt: false });
    assert.equal(cached.output_text, plain.output_text);
    assert.equal(cached.usage!.input_tokens, plain.usage!.input_tokens);
    assert.equal(plain.usage!.input_tokens_details.cached_tokens, 0);
    const hit = cached.usage!.input_tokens_details.cached_tokens;
    assert.ok(hit >= first.usage!.input_tokens, `${hit} cached of ${cached.usage!.input_tokens}`);
  });

  test("Ollama: prompt_eval_count counts every prompt token; prompt_eval_cached_count the reused ones", async () => {
    const messages = [SYSTEM, { role: "user", content: "A story about a big tree." }];
    const first = await ollama.chat({ model: "stories", messages, options: { temperature: 0, num_predict: 8 } });
    const second = await ollama.chat({ model: "stories", messages, options: { temperature: 0, num_predict: 8 } });
    assert.equal(second.message.content, first.message.content);
    assert.equal(second.prompt_eval_count, first.prompt_eval_count);
    const cached = (second as unknown as { prompt_eval_cached_count: number }).prompt_eval_cached_count;
    assert.equal(cached, second.prompt_eval_count - 1);
    const off = await api(d, "POST", "/api/chat", {
      model: "stories",
      messages,
      stream: false,
      cache_prompt: false,
      options: { temperature: 0, num_predict: 8 },
    });
    assert.equal(off.json.prompt_eval_cached_count, 0);
    assert.equal(off.json.message.content, first.message.content);
  });

  test("/api/ps and /metrics show the cache and its hit rate", async () => {
    const ps = (await api(d, "GET", "/api/ps")).json.models[0];
    const cache = ps.promptCache;
    assert.ok(cache.hitTokens > 0 && cache.missTokens > 0, JSON.stringify(cache));
    assert.equal(cache.hitRate, cache.hitTokens / (cache.hitTokens + cache.missTokens));
    assert.equal(cache.slots.length, 4);
    assert.ok(cache.slots.some((s: { cachedTokens: number; busy: boolean }) => s.cachedTokens > 0 && !s.busy));
    assert.equal(ps.stats.cachedPromptTokens, cache.hitTokens);
    const metrics = (await api(d, "GET", "/metrics")).text;
    const value = (result: string) =>
      Number(
        new RegExp(`^llmos_prompt_cache_tokens_total\\{model="stories:latest",result="${result}"\\} (\\d+)`, "m").exec(
          metrics,
        )?.[1],
      );
    assert.ok(value("hit") > 0, metrics);
    assert.ok(value("miss") > 0);
  });
});

describe("LLMOS_PROMPT_CACHE=off", () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon({ promptCache: false });
  });
  after(async () => d?.stop());

  test("nothing is reused", async () => {
    const body = { model: "stories", prompt: "Once upon a time", max_tokens: 8, temperature: 0 };
    await api(d, "POST", "/v1/completions", body);
    const again = await api(d, "POST", "/v1/completions", body);
    assert.equal(again.json.usage.prompt_tokens, 5);
    assert.deepEqual(again.json.usage.prompt_tokens_details, { cached_tokens: 0 });
  });
});
