import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { APIUserAbortError, AuthenticationError, Client, LlmosError, ModelNotFoundError, type Model } from "llmos";
import fs from "node:fs";
import {
  FakeRegistry,
  loadDaemonModule,
  serveFile,
  startTestDaemon,
  STORIES_GGUF,
  type TestDaemon,
} from "@llmos/test-support";

const mod = await loadDaemonModule();
const GREEDY_START = ", there was a little girl named Lily";

describe("SDK against the real daemon", { skip: typeof mod === "string" ? mod : false }, () => {
  let daemon: TestDaemon;
  let client: Client;
  let model: Model;
  let registry: FakeRegistry;

  before(async () => {
    if (typeof mod === "string") return;
    registry = await FakeRegistry.start();
    daemon = await startTestDaemon(mod, {
      config: { ociAuth: { [registry.host]: { username: "pusher", password: "secret-password" } } },
    });
    client = new Client({ host: daemon.url, apiKey: daemon.adminToken });
    const info = await client.importModel(STORIES_GGUF, "stories");
    assert.equal(info.name, "stories:latest");
    model = await client.loadModel("stories");
  });
  after(async () => {
    await daemon?.close();
    await registry?.close();
  });

  test("the seed example works as written (host from LLMOS_HOST)", async () => {
    const saved = { host: process.env["LLMOS_HOST"], key: process.env["LLMOS_API_KEY"] };
    process.env["LLMOS_HOST"] = daemon.url;
    if (daemon.adminToken) process.env["LLMOS_API_KEY"] = daemon.adminToken;
    try {
      const client = new Client();
      const model = await client.loadModel("stories");
      const text = await model.generateText("Once upon a time");
      assert.equal(typeof text, "string");
      assert.ok(text.length > 0);
    } finally {
      for (const [k, v] of [
        ["LLMOS_HOST", saved.host],
        ["LLMOS_API_KEY", saved.key],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  test("greedy completion matches the known continuation; streaming yields the same text and usage", async () => {
    const opts = { maxTokens: 24, temperature: 0 };
    const full = await model.complete("Once upon a time", opts);
    assert.ok(full.text.startsWith(GREEDY_START), JSON.stringify(full.text));
    assert.equal(full.usage?.completionTokens, 24);
    assert.equal(full.finishReason, "length");
    const stream = model.streamText("Once upon a time", opts);
    const pieces: string[] = [];
    for await (const p of stream) pieces.push(p);
    assert.ok(pieces.length > 1);
    assert.equal(pieces.join(""), full.text);
    assert.equal((await stream.result).text, full.text);
    assert.equal((await stream.usage)?.completionTokens, 24);
  });

  test("stop strings end generation before the stop text", async () => {
    const text = await model.generateText("Once upon a time", { maxTokens: 40, temperature: 0, stop: ["Lily"] });
    assert.ok(GREEDY_START.startsWith(text) || text.startsWith(", there was"), JSON.stringify(text));
    assert.ok(!text.includes("Lily"));
  });

  test("chat and streamChat agree under greedy sampling", async () => {
    const messages = [{ role: "user" as const, content: "Tell me a story." }];
    const res = await model.chat(messages, { maxTokens: 12, temperature: 0 });
    assert.equal(res.message.role, "assistant");
    assert.ok(res.usage && res.usage.promptTokens > 0);
    const streamed = await model.streamChat(messages, { maxTokens: 12, temperature: 0 }).text();
    assert.equal(streamed, res.text);
  });

  test("generateObject returns JSON that follows the schema", async () => {
    const schema = {
      type: "object",
      properties: { mood: { type: "string", enum: ["happy", "sad"] }, sunny: { type: "boolean" } },
      required: ["mood", "sunny"],
      additionalProperties: false,
    };
    const obj = await model.generateObject<{ mood: string; sunny: boolean }>("How was the day?", {
      schema,
      maxTokens: 60,
      temperature: 0,
    });
    assert.ok(["happy", "sad"].includes(obj.mood), JSON.stringify(obj));
    assert.equal(typeof obj.sunny, "boolean");
  });

  test("a forced tool choice returns a parsed tool call", async () => {
    const res = await model.chat([{ role: "user", content: "Weather in Paris?" }], {
      tools: [
        {
          name: "get_weather",
          description: "Weather of a city",
          parameters: {
            type: "object",
            properties: { city: { type: "string", enum: ["Paris", "Rome"] } },
            required: ["city"],
          },
        },
      ],
      toolChoice: "required",
      maxTokens: 60,
      temperature: 0,
    });
    assert.equal(res.toolCalls.length >= 1, true, JSON.stringify(res));
    assert.equal(res.toolCalls[0]?.name, "get_weather");
    assert.ok(["Paris", "Rome"].includes((res.toolCalls[0]?.arguments as { city: string }).city));
    assert.equal(res.finishReason, "tool_calls");
  });

  test("embed returns vectors of the model's embedding length", async () => {
    const info = await client.show("stories");
    const v = await model.embed("hello");
    assert.equal(v.length, info.details.embeddingLength);
    const vs = await model.embed(["hello", "a longer text"]);
    assert.equal(vs.length, 2);
    assert.deepEqual(vs[0], v);
  });

  test("model management: list, show, copy, remove, tokenize, ps, unload", async () => {
    assert.ok((await client.list()).some((m) => m.name === "stories:latest"));
    const copy = await client.copy("stories", "my/stories:v1");
    assert.equal(copy.name, "my/stories:v1");
    assert.equal((await client.show("my/stories:v1")).digest, copy.digest);
    await client.remove("my/stories:v1");
    await assert.rejects(client.show("my/stories:v1"), ModelNotFoundError);

    const tokens = await client.tokenize("stories", "Once upon a time");
    assert.ok(tokens.length >= 4);
    assert.match(await client.detokenize("stories", tokens), /Once upon a time/);

    const ps = await client.ps();
    assert.ok(ps.models.some((m) => m.name === "stories:latest"));
    await model.unload();
    assert.ok(!(await client.ps()).models.some((m) => m.name === "stories:latest" && m.state === "ready"));
    model = await client.loadModel("stories");
  });

  test("errors are typed with code, status and request id", async () => {
    const err = await client.show("does-not-exist").catch((e: unknown) => e);
    assert.ok(err instanceof ModelNotFoundError);
    assert.equal(err.code, "model_not_found");
    assert.equal(err.status, 404);
    assert.ok(err.requestId);
    const err2 = await client
      .model("does-not-exist")
      .generateText("x")
      .catch((e: unknown) => e);
    assert.ok(err2 instanceof ModelNotFoundError, String(err2));
    const err3 = await model.generateText("x", { temperature: -5 }).catch((e: unknown) => e);
    assert.ok(err3 instanceof LlmosError && err3.status === 400, String(err3));
  });

  test("aborting a stream stops it with APIUserAbortError", async () => {
    const ac = new AbortController();
    const stream = model.streamText("Once upon a time", { maxTokens: 200, signal: ac.signal });
    let n = 0;
    const err = await (async () => {
      for await (const _ of stream) if (++n === 2) ac.abort();
    })().catch((e: unknown) => e);
    assert.ok(err instanceof APIUserAbortError, String(err));
    assert.equal(n, 2);
  });

  test("keys: a created key works, a revoked key is refused", async () => {
    // A second active key keeps auth on after the revoke (with no active key the daemon turns auth off).
    await client.keys.create({ name: "keeper", scopes: ["inference"] });
    const created = await client.keys.create({ name: "sdk-test", scopes: ["inference"] });
    assert.ok(created.secret.length > 10);
    const keyed = new Client({ host: daemon.url, apiKey: created.secret });
    assert.ok((await keyed.model("stories").generateText("Once", { maxTokens: 2, temperature: 0 })).length > 0);
    assert.ok((await client.keys.list()).some((k) => k.id === created.key.id));
    await client.keys.revoke(created.key.id);
    await assert.rejects(keyed.model("stories").generateText("Once", { maxTokens: 2 }), AuthenticationError);
  });

  test("pull streams progress and resolves to the model (from a loopback URL)", async () => {
    const source = await serveFile(STORIES_GGUF);
    try {
      const size = fs.statSync(STORIES_GGUF).size;
      const stream = client.pull(source.url, { name: "pulled" });
      const events = [];
      for await (const e of stream) events.push(e);
      assert.equal(events.at(-1)?.status, "success");
      assert.ok(
        events.some((e) => e.total === size),
        JSON.stringify(events),
      );
      const info = await stream;
      assert.equal(info.name, "pulled:latest");
      assert.equal(info.digest, (await client.show("stories")).digest);
      // Awaiting without iterating works too.
      assert.equal((await client.pull(source.url, { name: "pulled2" })).name, "pulled2:latest");
    } finally {
      await source.close();
    }
  });

  test("push resolves to where the model went; pull brings it back with its origin", async () => {
    const target = `oci://${registry.host}/sdk/stories:v1`;
    const stream = client.push("stories", target, { insecure: true });
    const statuses: string[] = [];
    for await (const e of stream) statuses.push(e.status);
    assert.equal(statuses.at(-1), "success");
    const pushed = await stream;
    assert.equal(pushed.reference, `${registry.host}/sdk/stories:v1`);
    assert.equal(pushed.manifestDigest, registry.manifest("sdk/stories", "v1")?.digest);
    const back = await client.pull(target, { insecure: true, name: "stories-back" });
    assert.equal(back.digest, (await client.show("stories")).digest);
    const info = await client.show("stories-back");
    assert.equal(info.origin?.manifestDigest, pushed.manifestDigest);
    assert.equal(info.origin?.repository, "sdk/stories");
    await assert.rejects(client.push("no-such-model", target, { insecure: true }).done(), ModelNotFoundError);
  });

  test("create builds a model from a Modelfile and streams progress", async () => {
    const events: string[] = [];
    const stream = client.create("tuned", "FROM stories\nPARAMETER temperature 0.25\n");
    for await (const e of stream) events.push(e.status);
    assert.equal(events.at(-1), "success");
    const info = await stream.done();
    assert.equal(info.name, "tuned:latest");
    assert.equal((await client.show("tuned")).parameters["temperature"], 0.25);
  });
});
