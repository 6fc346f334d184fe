import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import {
  APIConnectionError,
  APITimeoutError,
  APIUserAbortError,
  AuthenticationError,
  BadRequestError,
  Client,
  ContextLengthExceededError,
  InternalServerError,
  LlmosError,
  ModelNotFoundError,
  NotFoundError,
  OutputParseError,
  QueueFullError,
  QuotaExceededError,
  RateLimitError,
  resolveHost,
  ServiceUnavailableError,
} from "llmos";
import { MockDaemon } from "./helpers/mock-daemon.js";

const loaded = (name: string) => ({
  name,
  digest: "sha256:00",
  runnerPid: 1,
  state: "ready",
  contextSize: 256,
  slots: 1,
  slotsBusy: 0,
  queued: 0,
  pinned: false,
  expiresAt: null,
  memory: { estimatedBytes: 1, rssBytes: null, vramBytes: null },
  gpuLayers: 0,
  engine: "mock",
  stats: { decodeBatches: 0, multiSequenceBatches: 0, maxSequencesInBatch: 0, tokensGenerated: 0, promptTokens: 0 },
});

describe("resolveHost", () => {
  test("accepts URLs, host:port, bare hosts and bare ports like OLLAMA_HOST", () => {
    assert.equal(resolveHost(undefined), "http://127.0.0.1:11435");
    assert.equal(resolveHost(""), "http://127.0.0.1:11435");
    assert.equal(resolveHost("8080"), "http://127.0.0.1:8080");
    assert.equal(resolveHost(":8080"), "http://127.0.0.1:8080");
    assert.equal(resolveHost("example.com"), "http://example.com:11435");
    assert.equal(resolveHost("example.com:99"), "http://example.com:99");
    assert.equal(resolveHost("0.0.0.0:1234"), "http://127.0.0.1:1234");
    assert.equal(resolveHost("http://h.example"), "http://h.example");
    assert.equal(resolveHost("https://h.example/prefix/"), "https://h.example/prefix");
    assert.equal(resolveHost(" http://[::1]:5/ "), "http://[::1]:5");
    assert.throws(() => resolveHost("ftp://x"), TypeError);
  });
});

describe("Client against a mock daemon", () => {
  const mock = new MockDaemon();
  let client: Client;

  before(async () => {
    await mock.start();
    client = new Client({ host: mock.url, apiKey: "sk-test", maxRetries: 2 });
  });
  after(() => mock.close());

  test("seed example shape: loadModel then generateText sends the prompt and options", async () => {
    mock.on("POST /api/models/stories/load", (c) => c.json(200, loaded("stories:latest")));
    mock.on("POST /v1/completions", (c) => {
      const body = c.req.body as { prompt: string; model: string };
      c.json(200, {
        id: "cmpl-1",
        choices: [{ index: 0, text: `[${body.model}] ${body.prompt.toUpperCase()}`, finish_reason: "length" }],
        usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 },
      });
    });
    const model = await client.loadModel("stories", { keepAlive: "5m", pinned: true });
    assert.equal(model.name, "stories:latest");
    assert.equal(model.info?.state, "ready");
    const loadReq = mock.received.at(-1)!;
    assert.deepEqual(loadReq.body, { keepAlive: "5m", pinned: true });
    assert.equal(loadReq.headers.authorization, "Bearer sk-test");

    const text = await model.generateText("Once upon a time", { maxTokens: 7, temperature: 0, topK: 3, stop: ["."] });
    assert.equal(text, "[stories:latest] ONCE UPON A TIME");
    const req = mock.received.at(-1)!;
    assert.deepEqual(req.body, {
      model: "stories:latest",
      prompt: "Once upon a time",
      max_tokens: 7,
      temperature: 0,
      top_k: 3,
      stop: ["."],
      stream: false,
    });
    const full = await model.complete("x");
    assert.deepEqual(full.usage, { promptTokens: 3, completionTokens: 5, totalTokens: 8 });
    assert.equal(full.finishReason, "length");
    assert.match(full.requestId ?? "", /^req-\d+$/);
  });

  test("path parameters are encoded", async () => {
    mock.on("GET /api/models/stories%3Alatest", (c) => c.json(200, { name: "stories:latest" }));
    mock.on("DELETE /api/models/a%2Fb%3Ac", (c) => c.json(200, { deleted: "a/b:c" }));
    mock.on("POST /api/models/x%20y/copy", (c) =>
      c.json(200, { name: (c.req.body as { destination: string }).destination }),
    );
    assert.equal((await client.show("stories:latest")).name, "stories:latest");
    await client.remove("a/b:c");
    assert.equal((await client.copy("x y", "z:1")).name, "z:1");
  });

  test("server error codes map to typed errors with status and request id", async () => {
    mock.on("GET /api/models/nope", (c) =>
      c.json(404, { error: { code: "model_not_found", message: "model 'nope' not found", details: { name: "nope" } } }),
    );
    const err = await client.show("nope").catch((e: unknown) => e);
    assert.ok(err instanceof ModelNotFoundError);
    assert.ok(err instanceof NotFoundError);
    assert.ok(err instanceof LlmosError);
    assert.equal(err.code, "model_not_found");
    assert.equal(err.status, 404);
    assert.equal(err.message, "model 'nope' not found");
    assert.deepEqual(err.details, { name: "nope" });
    assert.match(err.requestId ?? "", /^req-\d+$/);
    assert.equal(err.name, "ModelNotFoundError");

    // OpenAI-shaped error body.
    mock.on("POST /v1/chat/completions", (c) =>
      c.json(400, {
        error: {
          message: "too long",
          type: "invalid_request_error",
          param: "messages",
          code: "context_length_exceeded",
        },
      }),
    );
    const e2 = await client
      .model("m")
      .chat([{ role: "user", content: "hi" }])
      .catch((e: unknown) => e);
    assert.ok(e2 instanceof ContextLengthExceededError);
    assert.ok(e2 instanceof BadRequestError);
    assert.equal(e2.details?.["param"], "messages");

    // Unknown body: falls back on the status family.
    mock.on("GET /api/ps", (c) => c.json(401, { error: "who are you" }));
    const e3 = await client.ps().catch((e: unknown) => e);
    assert.ok(e3 instanceof AuthenticationError);
    assert.equal(e3.code, "unauthorized");
  });

  test("429/503 are retried honouring Retry-After; quota_exceeded and exhausted retries are not", async () => {
    mock.on("GET /api/models", (c) => {
      if (c.hit <= 2) return c.json(503, { error: { code: "queue_full", message: "full" } }, { "retry-after": "0" });
      c.json(200, { models: [{ name: "a:latest" }] });
    });
    const models = await client.list();
    assert.equal(models[0]?.name, "a:latest");
    assert.equal(mock.hits.get("GET /api/models"), 3);

    mock.hits.delete("GET /api/models");
    mock.on("GET /api/models", (c) =>
      c.json(503, { error: { code: "queue_full", message: "full" } }, { "retry-after-ms": "5" }),
    );
    const e = await client.list().catch((x: unknown) => x);
    assert.ok(e instanceof QueueFullError);
    assert.ok(e instanceof ServiceUnavailableError);
    assert.equal(mock.hits.get("GET /api/models"), 3, "1 try + 2 retries");

    mock.on("POST /api/tokenize", (c) =>
      c.json(429, { error: { code: "quota_exceeded", message: "daily tokens spent" } }, { "retry-after": "0" }),
    );
    const q = await client.tokenize("m", "x").catch((x: unknown) => x);
    assert.ok(q instanceof QuotaExceededError);
    assert.equal(mock.hits.get("POST /api/tokenize"), 1);

    mock.on("POST /api/detokenize", (c) =>
      c.json(429, { error: { code: "rate_limited", message: "slow down" } }, { "retry-after": "3600" }),
    );
    const r = await client.detokenize("m", [1]).catch((x: unknown) => x);
    assert.ok(r instanceof RateLimitError);
    assert.equal(r.retryAfterMs, 3_600_000);
    assert.equal(mock.hits.get("POST /api/detokenize"), 1, "a Retry-After over a minute is not waited for");
  });

  test("connection errors: retried for GET, not for POST; typed as APIConnectionError", async () => {
    const dead = http.createServer();
    await new Promise<void>((r) => dead.listen(0, "127.0.0.1", r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    let calls = 0;
    const counting = new Client({
      host: `127.0.0.1:${port}`,
      maxRetries: 1,
      fetch: (u, i) => {
        calls++;
        return fetch(u, i);
      },
    });
    const e1 = await counting.list().catch((x: unknown) => x);
    assert.ok(e1 instanceof APIConnectionError);
    assert.equal(e1.code, "connection_error");
    assert.equal(calls, 2);
    calls = 0;
    const e2 = await counting
      .model("m")
      .generateText("x")
      .catch((x: unknown) => x);
    assert.ok(e2 instanceof APIConnectionError);
    assert.equal(calls, 1);
  });

  test("timeout gives APITimeoutError; abort gives APIUserAbortError", async () => {
    mock.on("GET /api/system", (c) => {
      setTimeout(() => c.json(200, {}), 2000).unref();
    });
    const quick = new Client({ host: mock.url, timeout: 100, maxRetries: 0 });
    const t = await quick.system().catch((x: unknown) => x);
    assert.ok(t instanceof APITimeoutError);
    assert.equal(t.code, "timeout");

    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const a = await client.system({ signal: ac.signal }).catch((x: unknown) => x);
    assert.ok(a instanceof APIUserAbortError);
    assert.equal(a.code, "aborted");
  });

  test("streamText yields deltas and settles result and usage", async () => {
    mock.on("POST /v1/completions", (c) => {
      const body = c.req.body as { prompt: string; stream: boolean; stream_options: unknown };
      assert.equal(body.stream, true);
      assert.deepEqual(body.stream_options, { include_usage: true });
      const w = c.sse();
      const words = body.prompt.split(" ");
      words.forEach((word, i) =>
        w.data({
          id: "c1",
          choices: [{ index: 0, text: word, finish_reason: i === words.length - 1 ? "stop" : null }],
        }),
      );
      w.data({
        id: "c1",
        choices: [],
        usage: { prompt_tokens: 1, completion_tokens: words.length, total_tokens: 1 + words.length },
      });
      w.done();
    });
    const stream = client.model("m").streamText("a b c d");
    const parts: string[] = [];
    for await (const t of stream) parts.push(t);
    assert.deepEqual(parts, ["a", "b", "c", "d"]);
    const result = await stream.result;
    assert.equal(result.text, "abcd");
    assert.equal(result.finishReason, "stop");
    assert.deepEqual(await stream.usage, { promptTokens: 1, completionTokens: 4, totalTokens: 5 });
    // Awaiting the result without iterating consumes the stream.
    assert.equal(await client.model("m").streamText("x y").text(), "xy");
  });

  test("a mid-stream error surfaces as a typed error and is not retried", async () => {
    mock.hits.delete("POST /v1/completions");
    mock.on("POST /v1/completions", (c) => {
      const w = c.sse();
      w.data({ choices: [{ index: 0, text: "partial", finish_reason: null }] });
      w.data({ error: { message: "runner died", type: "server_error", param: null, code: "runner_crashed" } });
      w.done();
    });
    const stream = client.model("m").streamText("x");
    const got: string[] = [];
    const err = await (async () => {
      for await (const t of stream) got.push(t);
    })().catch((e: unknown) => e);
    assert.deepEqual(got, ["partial"]);
    assert.ok(err instanceof InternalServerError);
    assert.equal(err.code, "runner_crashed");
    assert.equal(err.status, 502);
    await assert.rejects(stream.result, InternalServerError);
    assert.equal(mock.hits.get("POST /v1/completions"), 1);
  });

  test("aborting a stream mid-way throws APIUserAbortError", async () => {
    mock.on("POST /v1/completions", (c) => {
      const w = c.sse();
      w.data({ choices: [{ index: 0, text: "first", finish_reason: null }] });
      // never finishes
    });
    const ac = new AbortController();
    const stream = client.model("m").streamText("x", { signal: ac.signal });
    const err = await (async () => {
      for await (const _ of stream) ac.abort();
    })().catch((e: unknown) => e);
    assert.ok(err instanceof APIUserAbortError, String(err));
  });

  test("a stream is single-use; leaving the loop early closes it and rejects result", async () => {
    mock.on("POST /v1/completions", (c) => {
      const w = c.sse();
      for (const t of ["a", "b", "c"]) w.data({ choices: [{ index: 0, text: t, finish_reason: null }] });
      w.done();
    });
    const stream = client.model("m").streamText("x");
    for await (const t of stream) {
      assert.equal(t, "a");
      break;
    }
    await assert.rejects(stream.result, APIUserAbortError);
    await assert.rejects(async () => {
      for await (const _ of stream) {
        // never reached
      }
    }, TypeError);
  });

  test("chat with tools returns parsed tool calls; messages are sent in wire shape", async () => {
    mock.on("POST /v1/chat/completions", (c) => {
      const body = c.req.body as { tools: Array<{ function: { name: string } }>; messages: unknown[] };
      c.json(200, {
        id: "chat-1",
        choices: [
          {
            index: 0,
            finish_reason: "tool_calls",
            message: {
              role: "assistant",
              content: null,
              tool_calls: [
                {
                  id: "call_9",
                  type: "function",
                  function: { name: body.tools[0]!.function.name, arguments: '{"city":"Paris"}' },
                },
              ],
            },
          },
        ],
        usage: { prompt_tokens: 10, completion_tokens: 4, total_tokens: 14 },
      });
    });
    const tools = [{ name: "weather", description: "get weather", parameters: { type: "object" } }];
    const res = await client.model("m").chat(
      [
        { role: "system", content: "be brief" },
        { role: "tool", content: "sunny", toolCallId: "call_1" },
      ],
      { tools, toolChoice: { name: "weather" }, temperature: 0 },
    );
    assert.equal(res.finishReason, "tool_calls");
    assert.deepEqual(res.toolCalls, [
      { id: "call_9", name: "weather", arguments: { city: "Paris" }, rawArguments: '{"city":"Paris"}' },
    ]);
    assert.equal(res.message.content, null);
    const sent = mock.received.at(-1)!.body as Record<string, unknown>;
    assert.deepEqual(sent["tools"], [
      { type: "function", function: { name: "weather", description: "get weather", parameters: { type: "object" } } },
    ]);
    assert.deepEqual(sent["tool_choice"], { type: "function", function: { name: "weather" } });
    assert.deepEqual(sent["messages"], [
      { role: "system", content: "be brief" },
      { role: "tool", content: "sunny", tool_call_id: "call_1" },
    ]);
  });

  test("streamChat assembles content and tool-call deltas", async () => {
    mock.on("POST /v1/chat/completions", (c) => {
      const w = c.sse();
      w.data({ id: "s", choices: [{ index: 0, delta: { role: "assistant", content: "Hel" } }] });
      w.data({ id: "s", choices: [{ index: 0, delta: { content: "lo" } }] });
      w.data({
        id: "s",
        choices: [
          { index: 0, delta: { tool_calls: [{ index: 0, id: "c0", function: { name: "f", arguments: '{"a"' } }] } },
        ],
      });
      w.data({
        id: "s",
        choices: [
          {
            index: 0,
            delta: { tool_calls: [{ index: 0, function: { arguments: ":1}" } }] },
            finish_reason: "tool_calls",
          },
        ],
      });
      w.data({ id: "s", choices: [], usage: { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 } });
      w.done();
    });
    const s = client.model("m").streamChat([{ role: "user", content: "hi" }]);
    const parts: string[] = [];
    for await (const p of s) parts.push(p);
    assert.deepEqual(parts, ["Hel", "lo"]);
    const r = await s.result;
    assert.equal(r.text, "Hello");
    assert.deepEqual(r.toolCalls, [{ id: "c0", name: "f", arguments: { a: 1 }, rawArguments: '{"a":1}' }]);
    assert.equal(r.usage?.totalTokens, 5);
  });

  test("generateObject sends a strict json_schema and parses the reply", async () => {
    mock.on("POST /v1/chat/completions", (c) => {
      const body = c.req.body as {
        response_format: { json_schema: { schema: { properties: Record<string, unknown> } } };
      };
      const keys = Object.keys(body.response_format.json_schema.schema.properties);
      const content = c.hit === 1 ? JSON.stringify(Object.fromEntries(keys.map((k, i) => [k, i]))) : "{not json";
      c.json(200, { choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: "stop" }] });
    });
    mock.hits.delete("POST /v1/chat/completions");
    const schema = {
      type: "object",
      properties: { x: { type: "integer" }, y: { type: "integer" } },
      required: ["x", "y"],
    };
    const obj = await client
      .model("m")
      .generateObject<{ x: number; y: number }>("give me a point", { schema, name: "point" });
    assert.deepEqual(obj, { x: 0, y: 1 });
    const sent = mock.received.at(-1)!.body as Record<string, unknown>;
    assert.deepEqual(sent["response_format"], {
      type: "json_schema",
      json_schema: { name: "point", schema, strict: true },
    });
    assert.deepEqual(sent["messages"], [{ role: "user", content: "give me a point" }]);
    const bad = await client
      .model("m")
      .generateObject("again", { schema })
      .catch((e: unknown) => e);
    assert.ok(bad instanceof OutputParseError);
    assert.equal(bad.text, "{not json");
  });

  test("embed returns one vector for a string and one per input for an array", async () => {
    mock.on("POST /v1/embeddings", (c) => {
      const input = (c.req.body as { input: string | string[] }).input;
      const list = Array.isArray(input) ? input : [input];
      // Out of order on purpose: the SDK sorts by index.
      c.json(200, { data: list.map((s, index) => ({ index, embedding: [s.length, index] })).reverse() });
    });
    assert.deepEqual(await client.model("m").embed("abc"), [3, 0]);
    assert.deepEqual(await client.model("m").embed(["a", "bb"]), [
      [1, 0],
      [2, 1],
    ]);
  });

  test("pull streams NDJSON progress, is awaitable, and throws a mid-stream error line", async () => {
    mock.on("POST /api/models/pull", (c) => {
      const body = c.req.body as { reference: string; revision?: string };
      const w = c.ndjson();
      w.line({ status: "pulling manifest" });
      w.line({ status: "downloading", digest: "sha256:ab", total: 100, completed: 50 });
      w.line({ status: "downloading", digest: "sha256:ab", total: 100, completed: 100 });
      if (body.reference === "bad") {
        w.line({ error: { code: "insufficient_storage", message: "disk full" } });
        return w.end();
      }
      w.line({ status: "success", model: { name: `${body.reference}@${body.revision ?? "main"}` } });
      w.end();
    });
    const events: string[] = [];
    const stream = client.pull("owner/repo", { revision: "v1" });
    for await (const e of stream) events.push(`${e.status}:${e.completed ?? ""}`);
    assert.deepEqual(events, ["pulling manifest:", "downloading:50", "downloading:100", "success:"]);
    assert.equal((await stream).name, "owner/repo@v1");
    assert.equal((await client.pull("other")).name, "other@main");
    const err = await client
      .pull("bad")
      .done()
      .catch((e: unknown) => e);
    assert.ok(err instanceof InternalServerError);
    assert.equal(err.code, "insufficient_storage");
  });

  test("create, ps, unload, tokenize, keys API use the documented routes", async () => {
    mock.on("POST /api/models/create", (c) => {
      const w = c.ndjson();
      w.line({ status: "parsing modelfile" });
      w.line({ status: "success", model: { name: (c.req.body as { name: string }).name } });
      w.end();
    });
    mock.on("GET /api/ps", (c) => c.json(200, { models: [loaded("a:latest")], queue: { total: 0, capacity: 512 } }));
    mock.on("POST /api/models/a%3Alatest/unload", (c) => c.json(200, { unloaded: "a:latest" }));
    mock.on("POST /api/tokenize", (c) =>
      c.json(200, { tokens: [...(c.req.body as { content: string }).content].map((ch) => ch.charCodeAt(0)) }),
    );
    mock.on("POST /api/detokenize", (c) =>
      c.json(200, { content: String.fromCharCode(...(c.req.body as { tokens: number[] }).tokens) }),
    );
    mock.on("POST /api/keys", (c) =>
      c.json(200, { key: { id: "k1", ...(c.req.body as object) }, secret: "llmos_secret" }),
    );
    mock.on("GET /api/keys", (c) => c.json(200, { keys: [{ id: "k1", name: "ci", scopes: ["inference"] }] }));
    mock.on("DELETE /api/keys/k1", (c) => c.json(200, { key: { id: "k1", revokedAt: "2026-01-01T00:00:00Z" } }));
    mock.on("GET /api/usage", (c) =>
      c.json(200, {
        usage: [{ keyId: null, model: "m", day: "2026-01-01", promptTokens: 1, completionTokens: 2, requests: 1 }],
        query: c.req.url,
      }),
    );
    mock.on("GET /api/audit", (c) => c.json(200, { entries: [{ id: 1, action: "key.create", target: c.req.url }] }));
    mock.on("POST /api/keys/k1/rotate", (c) => c.json(200, { key: { id: "k1" }, secret: "llmos_new" }));

    assert.equal((await client.create("mine:v1", "FROM stories\n")).name, "mine:v1");
    const ps = await client.ps();
    assert.equal(ps.models[0]?.name, "a:latest");
    await client.model("a:latest").unload();
    assert.deepEqual(await client.tokenize("m", "hi"), [104, 105]);
    assert.equal(await client.detokenize("m", [104, 105]), "hi");
    const created = await client.keys.create({ name: "ci", scopes: ["inference"], rpm: 10 });
    assert.equal(created.secret, "llmos_secret");
    assert.deepEqual(mock.received.at(-1)!.body, { name: "ci", scopes: ["inference"], rpm: 10 });
    assert.equal((await client.keys.list())[0]?.id, "k1");
    assert.equal((await client.keys.revoke("k1")).revokedAt, "2026-01-01T00:00:00Z");
    assert.equal((await client.usage({ model: "m" }))[0]?.completionTokens, 2);
    assert.equal(mock.received.at(-1)!.url, "/api/usage?model=m");
    const audit = await client.audit({ since: "2026-01-01T00:00:00.000Z", limit: 5 });
    assert.equal(audit[0]?.target, "/api/audit?since=2026-01-01T00%3A00%3A00.000Z&limit=5");
    assert.equal((await client.keys.rotate("k1")).secret, "llmos_new");
  });

  test("env LLMOS_HOST and LLMOS_API_KEY are read in the constructor", async () => {
    const saved = { host: process.env["LLMOS_HOST"], key: process.env["LLMOS_API_KEY"] };
    try {
      process.env["LLMOS_HOST"] = mock.url.replace("http://", "");
      process.env["LLMOS_API_KEY"] = "sk-env";
      const c = new Client();
      assert.equal(c.host, mock.url);
      assert.equal(c.hasApiKey, true);
      mock.on("GET /healthz", (ctx) => ctx.json(200, { status: "ok" }));
      assert.equal(await c.health(), true);
      assert.equal(mock.received.at(-1)!.headers.authorization, "Bearer sk-env");
    } finally {
      if (saved.host === undefined) delete process.env["LLMOS_HOST"];
      else process.env["LLMOS_HOST"] = saved.host;
      if (saved.key === undefined) delete process.env["LLMOS_API_KEY"];
      else process.env["LLMOS_API_KEY"] = saved.key;
    }
  });
});
