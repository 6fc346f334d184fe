/**
 * The one generation pipeline behind the OpenAI and Ollama routes, through real HTTP on a real daemon with fake
 * runners (scripted text, in milliseconds): usage recorded once per request under its key, tool calls held back
 * and parsed, a failure mid-stream as a last error frame, a client that goes away cancels its generation. The
 * same routes run with real runners in test/e2e.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";
import { FakeRunners } from "../support/fake-runner.js";
import { settle } from "../support/fake-clock.js";

const TOOLS = [{ type: "function", function: { name: "get_weather", parameters: { type: "object", properties: {} } } }];

describe("the generation pipeline (fake runners, real HTTP)", () => {
  let d: TestDaemon;
  let runners: FakeRunners;
  let key: { id: string; secret: string };
  let auth: Record<string, string>;

  before(async () => {
    runners = new FakeRunners();
    d = await startTestDaemon({}, { options: { runners } });
    const issued = await d.security.keys.create({ name: "pipeline", scopes: ["inference", "models:read"] });
    key = { id: issued.key.id, secret: issued.secret };
    auth = { authorization: `Bearer ${key.secret}` };
  });
  after(async () => d?.stop());

  const post = (url: string, body: Record<string, unknown>) => api(d, "POST", url, body, auth);
  const lines = (text: string) => text.split("\n").filter(Boolean);
  const sse = (text: string) =>
    text
      .split("\n\n")
      .filter(Boolean)
      .map((f) => f.replace(/^data: /, ""))
      .map((f) => (f === "[DONE]" ? f : JSON.parse(f)));
  async function usage() {
    await d.security.flush();
    const [row] = await d.security.usage({ keyId: key.id });
    return row ? [row.promptTokens, row.completionTokens, row.requests] : [0, 0, 0];
  }
  async function usageAdded(action: () => Promise<unknown>): Promise<number[]> {
    const before = await usage();
    await action();
    const after = await usage();
    return after.map((v, i) => v - before[i]!);
  }

  test("every generation route records its usage once, under the request's key, streamed or not", async () => {
    runners.script = () => ({ chunks: ["Once", " upon"], promptTokens: 4 });
    const chat = { model: "stories", messages: [{ role: "user", content: "hi" }] };
    // n = 2: the prompt once (OpenAI counts it once), both completions.
    assert.deepEqual(await usageAdded(() => post("/v1/chat/completions", { ...chat, n: 2 })), [4, 4, 1]);
    assert.deepEqual(
      await usageAdded(async () => {
        const r = await post("/v1/completions", { model: "stories", prompt: "x", stream: true });
        assert.equal(sse(r.text).at(-1), "[DONE]");
      }),
      [4, 2, 1],
    );
    for (const stream of [true, false]) {
      assert.deepEqual(
        await usageAdded(() => post("/api/generate", { model: "stories", prompt: "x", stream })),
        [4, 2, 1],
      );
      assert.deepEqual(await usageAdded(() => post("/api/chat", { ...chat, stream })), [4, 2, 1]);
    }
    assert.deepEqual(
      await usageAdded(() => post("/v1/embeddings", { model: "stories", input: ["a", "b"] })),
      [6, 0, 1],
    );
    assert.deepEqual(await usageAdded(() => post("/api/embed", { model: "stories", input: "abc" })), [3, 0, 1]);
  });

  test("a tool call is held back and parsed, in both API styles, streamed or not", async () => {
    runners.script = () => ({ chunks: ['{"name": "get_weather",', ' "arguments": {"city": "Paris"}}'] });
    const oa = await post("/v1/chat/completions", {
      model: "stories",
      messages: [{ role: "user", content: "?" }],
      tools: TOOLS,
    });
    assert.equal(oa.json.choices[0].finish_reason, "tool_calls");
    assert.deepEqual(JSON.parse(oa.json.choices[0].message.tool_calls[0].function.arguments), { city: "Paris" });
    const frames = sse(
      (
        await post("/v1/chat/completions", {
          model: "stories",
          messages: [{ role: "user", content: "?" }],
          tools: TOOLS,
          stream: true,
        })
      ).text,
    );
    const deltas = frames.filter((f) => f !== "[DONE]").map((f) => f.choices[0]);
    assert.ok(!deltas.some((c) => c.delta?.content?.includes("{")), "no JSON leaks as content");
    assert.equal(deltas.find((c) => c.delta?.tool_calls)?.delta.tool_calls[0].function.name, "get_weather");
    assert.equal(deltas.at(-1).finish_reason, "tool_calls");
    const ol = lines(
      (await post("/api/chat", { model: "stories", messages: [{ role: "user", content: "?" }], tools: TOOLS })).text,
    ).map((l) => JSON.parse(l));
    assert.deepEqual(ol.find((l) => l.message?.tool_calls)?.message.tool_calls, [
      { function: { name: "get_weather", arguments: { city: "Paris" } } },
    ]);
    assert.equal(ol.at(-1).done, true);
    runners.script = () => ({ chunks: ["  {not a call", "}"] });
    const text = await post("/api/chat", {
      model: "stories",
      messages: [{ role: "user", content: "?" }],
      tools: TOOLS,
      stream: false,
    });
    assert.equal(text.json.message.content, "  {not a call}", "held text that is not a call comes back as content");
  });

  test("a failure mid-stream ends the stream with an error frame in the route's shape; no usage is recorded", async () => {
    runners.script = () => ({ chunks: ["Once"], error: new Error("boom") });
    const before = await usage();
    const oa = sse((await post("/v1/completions", { model: "stories", prompt: "x", stream: true })).text);
    assert.equal(oa[0].choices[0].text, "Once", "text made before the failure is sent");
    assert.equal(oa.at(-1).error.code, "internal");
    const ol = lines((await post("/api/generate", { model: "stories", prompt: "x" })).text).map((l) => JSON.parse(l));
    assert.equal(ol[0].response, "Once");
    assert.deepEqual(Object.keys(ol.at(-1)), ["error", "code"]);
    assert.deepEqual(await usage(), before);
    const ps = (await api(d, "GET", "/api/ps", undefined, auth)).json.models[0];
    assert.equal(ps.slotsBusy, 0, "the slots were given back");
  });

  test("a client that goes away cancels its generation and frees its slot", async () => {
    runners.script = () => ({ chunks: ["Once"], hold: true });
    const controller = new AbortController();
    const res = await fetch(`${d.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...auth },
      body: JSON.stringify({ model: "stories", prompt: "x", stream: true }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    await reader.read(); // the first frame: the generation runs
    controller.abort();
    for (let i = 0; i < 200; i++) {
      const busy = (await api(d, "GET", "/api/ps", undefined, auth)).json.models[0].slotsBusy;
      if (busy === 0) break;
      await settle();
    }
    assert.equal((await api(d, "GET", "/api/ps", undefined, auth)).json.models[0].slotsBusy, 0);
    assert.equal(runners.live()[0]!.stops, 0, "the runner itself stays");
  });
});
