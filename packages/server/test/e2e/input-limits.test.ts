import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";

describe("input limits from config", () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon({
      limits: {
        bodyBytes: 64 * 1024,
        maxTokens: 100,
        messages: 3,
        stopSequences: 2,
        tools: 2,
        schemaBytes: 400,
        schemaDepth: 6,
        jsonDepth: 64,
      },
    });
  });
  after(async () => d?.stop());

  const chat = (extra: Record<string, unknown>) =>
    api(d, "POST", "/v1/chat/completions", {
      model: "stories",
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 2,
      ...extra,
    });
  const nested = (levels: number): Record<string, unknown> =>
    levels === 0 ? { type: "string" } : { type: "array", items: nested(levels - 1) };
  const tool = (name: string) => ({
    type: "function",
    function: { name, parameters: { type: "object", properties: { x: { type: "string" } } } },
  });

  test("body size -> 413", async () => {
    const r = await api(d, "POST", "/v1/completions", { model: "stories", prompt: "x".repeat(100 * 1024) });
    assert.equal(r.status, 413);
    assert.equal(r.json.error.code, "payload_too_large");
  });

  test("max tokens, messages, stop sequences, tools, schema size and depth -> 400/413 with a clear message", async () => {
    const cases: Array<[Record<string, unknown>, number, RegExp]> = [
      [{ max_tokens: 101 }, 400, /limit of 100/],
      [{ messages: Array.from({ length: 4 }, () => ({ role: "user", content: "x" })) }, 400, /at most 3 messages/],
      [{ stop: ["a", "b", "c"] }, 400, /at most 2 stop sequences/],
      [{ tools: [tool("a"), tool("b"), tool("c")] }, 400, /at most 2 tools/],
      [
        {
          response_format: {
            type: "json_schema",
            json_schema: { name: "big", schema: { type: "object", description: "d".repeat(500), properties: {} } },
          },
        },
        413,
        /limit is 400/,
      ],
      [
        { response_format: { type: "json_schema", json_schema: { name: "deep", schema: nested(8) } } },
        400,
        /nested more than 6/,
      ],
    ];
    for (const [extra, status, message] of cases) {
      const r = await chat(extra);
      assert.equal(r.status, status, `${JSON.stringify(extra).slice(0, 80)}: ${r.text}`);
      assert.match(r.json.error.message, message);
    }
  });

  test("a prompt longer than the model's context -> 400 context_length_exceeded", async () => {
    const r = await api(d, "POST", "/v1/completions", {
      model: "stories",
      prompt: "Once upon a time ".repeat(2000).slice(0, 60_000),
      max_tokens: 2,
    });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.code, "context_length_exceeded");
  });
});
