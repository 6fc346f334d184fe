import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { startTestDaemon, type TestDaemon } from "../support/daemon.js";

/** Streams one greedy completion; returns the text, the number of chunks that carried text, and usage. */
async function stream(d: TestDaemon, maxTokens: number) {
  const client = new OpenAI({ baseURL: `${d.url}/v1`, apiKey: "unused", maxRetries: 0 });
  const s = await client.completions.create({
    model: "stories",
    prompt: "Once upon a time",
    max_tokens: maxTokens,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let chunks = 0;
  let completionTokens = 0;
  for await (const c of s) {
    const t = c.choices[0]?.text ?? "";
    if (t) chunks++;
    text += t;
    if (c.usage) completionTokens = c.usage.completion_tokens;
  }
  const full = await client.completions.create({
    model: "stories",
    prompt: "Once upon a time",
    max_tokens: maxTokens,
    temperature: 0,
  });
  return { text, chunks, completionTokens, fullText: full.choices[0]!.text };
}

// stories260K makes thousands of tokens a second, far faster than one token per 20 ms.
describe("stream interval: fast tokens are merged into fewer chunks, and nothing is lost", () => {
  let merged: TestDaemon;
  let perToken: TestDaemon;
  before(async () => {
    merged = await startTestDaemon({ streamIntervalMs: 20 });
    perToken = await startTestDaemon({ streamIntervalMs: 0 });
  });
  after(async () => {
    await merged?.stop();
    await perToken?.stop();
  });

  test("interval 20 ms: far fewer chunks than tokens, the same text as without streaming", async () => {
    const r = await stream(merged, 200);
    assert.equal(r.completionTokens, 200);
    assert.equal(r.text, r.fullText);
    assert.ok(r.chunks >= 1 && r.chunks <= 50, `${r.chunks} chunks for 200 tokens`);
  });

  test("interval 0: one chunk per token (tokens that end inside a character excepted)", async () => {
    const r = await stream(perToken, 200);
    assert.equal(r.text, r.fullText);
    assert.ok(r.chunks > 150, `${r.chunks} chunks for 200 tokens`);
  });
});
