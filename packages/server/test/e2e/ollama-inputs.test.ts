import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Ollama } from "ollama";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";

describe("Ollama API: options, tools and bad inputs", () => {
  let d: TestDaemon;
  let ollama: Ollama;
  before(async () => {
    d = await startTestDaemon();
    ollama = new Ollama({ host: d.url });
  });
  after(async () => d?.stop());

  test("bad inputs get 400s in Ollama's error shape, never 500", async () => {
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ["/api/generate", { prompt: "x" }, /model/],
      ["/api/generate", { model: "stories", prompt: 5 }, /prompt/],
      [
        "/api/generate",
        { model: "stories", prompt: "x", options: { temperature: "hot" } },
        /temperature must be a number/,
      ],
      ["/api/generate", { model: "stories", prompt: "x", options: { temperature: -1 } }, /temperature/],
      ["/api/generate", { model: "stories", prompt: "x", options: { mirostat: 2 } }, /mirostat/],
      ["/api/generate", { model: "stories", prompt: "x", options: { tfs_z: 0.5 } }, /tail-free/],
      ["/api/generate", { model: "stories", prompt: "x", options: { typical_p: 0.5 } }, /typical/],
      ["/api/generate", { model: "stories", prompt: "x", options: { num_gpu: 3 } }, /GPU/],
      ["/api/generate", { model: "stories", prompt: "x", options: { numa: true } }, /NUMA/],
      ["/api/generate", { model: "stories", prompt: "x", options: { temprature: 0 } }, /unknown option "temprature"/],
      ["/api/generate", { model: "stories", prompt: "x", options: { stop: "x" } }, /stop must be an array/],
      ["/api/generate", { model: "stories", prompt: "x", options: { num_predict: 1.5 } }, /integer/],
      ["/api/generate", { model: "stories", prompt: "x", format: "yaml" }, /format/],
      ["/api/generate", { model: "stories", prompt: "x", format: { type: 42 } }, /"type" must be one of/],
      ["/api/generate", { model: "stories", prompt: "x", images: ["aGVsbG8="] }, /images are not supported/],
      ["/api/generate", { model: "stories", prompt: "x", suffix: "end" }, /suffix/],
      ["/api/generate", { model: "stories", prompt: "x", keep_alive: "forever" }, /duration/],
      ["/api/generate", { model: "stories", prompt: "x", context: [1, -2] }, /context/],
      ["/api/generate", { model: "stories", prompt: "x", context: [1, 99999999] }, /vocabulary/],
      ["/api/generate", { model: "stories", prompt: "x", think: true }, /think/],
      ["/api/chat", { model: "stories", messages: "hi" }, /messages/],
      ["/api/chat", { model: "stories", messages: [{ role: "robot", content: "x" }] }, /role/],
      [
        "/api/chat",
        { model: "stories", messages: [{ role: "user", content: "x", images: ["aGVsbG8="] }] },
        /images are not supported/,
      ],
      [
        "/api/chat",
        {
          model: "stories",
          messages: [{ role: "user", content: "x" }],
          tools: [
            {
              type: "function",
              function: { name: "f", parameters: { type: "object", properties: { a: { allOf: [] } } } },
            },
          ],
        },
        /allOf/,
      ],
      [
        "/api/chat",
        { model: "stories", messages: [{ role: "user", content: "x" }], tools: [{ type: "function" }] },
        /function/,
      ],
      ["/api/embed", { model: "stories" }, /input/],
      ["/api/embed", { model: "stories", input: [1, 2] }, /input/],
      ["/api/embed", { model: "stories", input: "x", dimensions: 0 }, /dimensions/],
      ["/api/embeddings", { model: "stories", prompt: ["x"] }, /prompt/],
    ];
    for (const [url, body, pattern] of cases) {
      const r = await api(d, "POST", url, body);
      assert.equal(r.status, 400, `${url} ${JSON.stringify(body)} -> ${r.status} ${r.text}`);
      assert.equal(typeof r.json.error, "string", r.text);
      assert.match(r.json.error, pattern, `${url} ${JSON.stringify(body)}`);
    }
    const malformed = await api(d, "POST", "/api/generate", "{not json");
    assert.equal(malformed.status, 400);
    assert.equal(typeof malformed.json.error, "string");
  });

  test("unknown top-level fields are tolerated like Ollama; no-op and default options are accepted", async () => {
    const r = await ollama.generate({
      model: "stories",
      prompt: "Once upon a time",
      raw: true,
      options: {
        temperature: 0,
        num_predict: 3,
        mirostat: 0,
        tfs_z: 1,
        typical_p: 1,
        num_keep: 5,
        penalize_newline: true,
        use_mmap: true,
        num_thread: 1,
        num_gpu: -1,
      },
      ...({ some_future_field: { x: 1 } } as object),
    });
    assert.equal(r.eval_count, 3);
  });

  test("options reach the sampler: seed reproduces, num_predict limits, repeat_penalty changes greedy text", async () => {
    const a = await ollama.generate({
      model: "stories",
      prompt: "Once upon a time",
      raw: true,
      options: { temperature: 1, seed: 9, num_predict: 15, top_k: 20, top_p: 0.9, min_p: 0.01 },
    });
    const b = await ollama.generate({
      model: "stories",
      prompt: "Once upon a time",
      raw: true,
      options: { temperature: 1, seed: 9, num_predict: 15, top_k: 20, top_p: 0.9, min_p: 0.01 },
    });
    assert.equal(a.response, b.response);
    const plain = await ollama.generate({
      model: "stories",
      prompt: "Once upon a time",
      raw: true,
      options: { temperature: 0, num_predict: 60 },
    });
    const penalised = await ollama.generate({
      model: "stories",
      prompt: "Once upon a time",
      raw: true,
      options: { temperature: 0, num_predict: 60, repeat_penalty: 1.8, repeat_last_n: -1 },
    });
    assert.notEqual(plain.response, penalised.response);
  });

  test("embed truncates inputs over the context by default; truncate: false refuses them", async () => {
    const long = "the dog ran to the park. ".repeat(200);
    const whole = (await api(d, "POST", "/api/tokenize", { model: "stories", content: long })).json.tokens.length;
    const r = await ollama.embed({ model: "stories", input: [long, "short"] });
    assert.equal(r.embeddings.length, 2);
    const ctx = ((await ollama.ps()).models.find((m) => m.name === "stories:latest") as any).context_length;
    assert.ok(whole > ctx, "the input is longer than the context");
    assert.ok(r.prompt_eval_count <= ctx + 8, `${r.prompt_eval_count} tokens embedded, context ${ctx}`);
    const refused = await api(d, "POST", "/api/embed", { model: "stories", input: long, truncate: false });
    assert.equal(refused.status, 400);
    assert.equal(refused.json.error, "the input length exceeds the context length", "Ollama's words");
  });

  test("num_ctx reloads the model with that context size", async () => {
    await ollama.generate({ model: "stories", prompt: "Once", raw: true, options: { num_predict: 2, num_ctx: 256 } });
    const ps = await ollama.ps();
    assert.equal((ps.models.find((m) => m.name === "stories:latest") as any).context_length, 256);
    // Over the training context: clamped to it, and asking again does not reload.
    const train = (await api(d, "GET", "/api/models/stories")).json.details.contextLength;
    assert.ok(train > 256 && train < 100_000);
    await ollama.generate({
      model: "stories",
      prompt: "Once",
      raw: true,
      options: { num_predict: 2, num_ctx: 100_000 },
    });
    const again = (await ollama.ps()).models.find((m) => m.name === "stories:latest") as any;
    assert.equal(again.context_length, train);
    await ollama.generate({
      model: "stories",
      prompt: "Once",
      raw: true,
      options: { num_predict: 2, num_ctx: 100_000 },
    });
    const third = (await ollama.ps()).models.find((m) => m.name === "stories:latest") as any;
    assert.equal(third.runnerPid, again.runnerPid);
  });

  test("chat with tools, an assistant tool call and a tool result fed back", async () => {
    const tools = [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Weather",
          parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        },
      },
    ];
    const r = await ollama.chat({
      model: "stories",
      messages: [
        { role: "user", content: "Weather in Paris?" },
        {
          role: "assistant",
          content: "",
          tool_calls: [{ function: { name: "get_weather", arguments: { city: "Paris" } } }],
        },
        { role: "tool", content: "sunny", tool_name: "get_weather" } as never,
      ],
      tools,
      options: { temperature: 0, num_predict: 8 },
    });
    assert.equal(r.message.role, "assistant");
    assert.ok(r.message.content.length > 0);
    const rendered = await api(d, "POST", "/api/apply-template", {
      model: "stories",
      messages: [
        { role: "user", content: "Weather in Paris?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "c1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
          ],
        },
        { role: "tool", content: "sunny", tool_call_id: "c1" },
      ],
      tools,
    });
    assert.match(rendered.json.prompt, /Assistant: \{"name":"get_weather","arguments":\{"city":"Paris"\}\}/);
    assert.match(rendered.json.prompt, /Tool: sunny/);
  });

  test("a format schema that matches a tool call comes back as tool_calls", async () => {
    const tools = [
      {
        type: "function",
        function: { name: "pick", parameters: { type: "object", properties: { n: { type: "integer" } } } },
      },
    ];
    const format = {
      type: "object",
      properties: { name: { const: "pick" }, arguments: { type: "object", properties: { n: { type: "integer" } } } },
    };
    const r = await ollama.chat({
      model: "stories",
      messages: [{ role: "user", content: "pick a number" }],
      tools,
      format,
      options: { temperature: 0, num_predict: 100 },
    });
    assert.equal(r.message.content, "");
    assert.equal(r.message.tool_calls?.[0]?.function.name, "pick");
    assert.ok(Number.isInteger(r.message.tool_calls?.[0]?.function.arguments.n));
    const stream = await ollama.chat({
      model: "stories",
      messages: [{ role: "user", content: "pick a number" }],
      tools,
      format,
      stream: true,
      options: { temperature: 0, num_predict: 100 },
    });
    const calls = [];
    for await (const part of stream) calls.push(...(part.message.tool_calls ?? []));
    assert.deepEqual(calls, r.message.tool_calls);
  });
});
