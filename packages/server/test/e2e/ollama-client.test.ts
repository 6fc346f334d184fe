import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Ollama } from "ollama";

/** The ollama client's error (its class is not in the ESM typings). */
type ResponseError = Error & { error: string; status_code: number };
import { STORIES_GOLDEN } from "../support/paths.js";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";

describe("Ollama API with the official ollama client", () => {
  let d: TestDaemon;
  let ollama: Ollama;
  before(async () => {
    d = await startTestDaemon();
    ollama = new Ollama({ host: d.url });
  });
  after(async () => d?.stop());

  test("GET and HEAD / answer 200 like Ollama; /api/version", async () => {
    const root = await fetch(d.url + "/");
    assert.equal(root.status, 200);
    assert.equal(await root.text(), "Ollama is running");
    const head = await fetch(d.url + "/", { method: "HEAD" });
    assert.equal(head.status, 200);
    const v = await ollama.version();
    assert.match(v.version, /^\d+\.\d+\.\d+/);
  });

  test("generate, raw and greedy, matches the reference story with real timings", async () => {
    const r = await ollama.generate({
      model: "stories",
      prompt: "Once upon a time",
      raw: true,
      options: { temperature: 0, num_predict: 40 },
    });
    assert.ok(r.response!.startsWith(STORIES_GOLDEN), r.response);
    assert.equal(r.done, true);
    assert.equal(r.done_reason, "length");
    assert.equal(r.eval_count, 40);
    assert.equal(r.prompt_eval_count, 5);
    assert.ok(r.total_duration > 0 && r.eval_duration > 0 && r.prompt_eval_duration > 0);
    assert.ok(r.total_duration >= r.eval_duration);
    assert.equal(typeof r.load_duration, "number");
    assert.equal(r.context, undefined, "raw mode returns no context, like Ollama");
  });

  test("generate streams NDJSON by default and ends with done + stats", async () => {
    const res = await api(d, "POST", "/api/generate", {
      model: "stories",
      prompt: "Once upon a time",
      raw: true,
      options: { temperature: 0, num_predict: 20 },
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /application\/x-ndjson/);
    const lines = res.text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.ok(lines.length > 2);
    const last = lines.at(-1);
    assert.equal(last.done, true);
    assert.equal(last.eval_count, 20);
    assert.ok(lines.slice(0, -1).every((l) => l.done === false && typeof l.response === "string"));

    const stream = await ollama.generate({
      model: "stories",
      prompt: "Once upon a time",
      raw: true,
      stream: true,
      options: { temperature: 0, num_predict: 40 },
    });
    let text = "";
    let final;
    for await (const part of stream) {
      text += part.response;
      if (part.done) final = part;
    }
    assert.ok(text.startsWith(STORIES_GOLDEN), text);
    assert.equal(final?.done_reason, "length");
  });

  test("generate returns context tokens that continue the conversation", async () => {
    const first = await ollama.generate({
      model: "stories",
      prompt: "Once upon a time",
      options: { temperature: 0, num_predict: 8 },
    });
    assert.ok(Array.isArray(first.context) && first.context.length >= 5 + 8 - 1, JSON.stringify(first.context));
    const tok = await api(d, "POST", "/api/detokenize", { model: "stories", tokens: first.context });
    assert.equal(tok.json.content.trim(), ("Once upon a time" + first.response).trim());
    // Continuing from the context equals generating from the whole text.
    const next = await ollama.generate({
      model: "stories",
      prompt: "",
      context: first.context,
      options: { temperature: 0, num_predict: 10 },
    });
    const whole = await ollama.generate({
      model: "stories",
      prompt: "Once upon a time" + first.response,
      raw: true,
      options: { temperature: 0, num_predict: 10 },
    });
    assert.equal(next.response, whole.response);
    assert.ok(next.context!.length > first.context.length);
  });

  test("stop option and done_reason stop", async () => {
    const r = await ollama.generate({
      model: "stories",
      prompt: "Once upon a time",
      raw: true,
      options: { temperature: 0, num_predict: 40, stop: ["Lily"] },
    });
    assert.equal(r.response, ", there was a little girl named ");
    assert.equal(r.done_reason, "stop");
  });

  test("chat, streaming and not, give the same greedy text", async () => {
    const messages = [{ role: "user", content: "Tell me a story" }];
    const r = await ollama.chat({ model: "stories", messages, options: { temperature: 0, num_predict: 20 } });
    assert.equal(r.message.role, "assistant");
    assert.ok(r.message.content.length > 0);
    assert.equal(r.eval_count, 20);
    assert.equal(r.done_reason, "length");
    const stream = await ollama.chat({
      model: "stories",
      messages,
      stream: true,
      options: { temperature: 0, num_predict: 20 },
    });
    let text = "";
    for await (const part of stream) text += part.message.content;
    assert.equal(text, r.message.content);
  });

  test("format json and a JSON schema constrain generate and chat", async () => {
    const schema = {
      type: "object",
      properties: { happy: { type: "boolean" }, count: { type: "integer" }, color: { enum: ["red", "blue"] } },
      required: ["happy", "count", "color"],
    };
    const r = await ollama.generate({
      model: "stories",
      prompt: "Once upon a time",
      format: schema,
      options: { temperature: 0, num_predict: 200 },
    });
    const v = JSON.parse(r.response!);
    assert.equal(typeof v.happy, "boolean");
    assert.ok(Number.isInteger(v.count));
    assert.ok(["red", "blue"].includes(v.color));
    const c = await ollama.chat({
      model: "stories",
      messages: [{ role: "user", content: "json please" }],
      format: { type: "object", properties: { ok: { type: "boolean" } } },
      options: { temperature: 0, num_predict: 200 },
    });
    assert.equal(c.done_reason, "stop", c.message.content);
    assert.equal(typeof JSON.parse(c.message.content).ok, "boolean");
    // "json" allows any JSON (the tiny model may not close it within the budget): it starts as an object.
    const j = await ollama.generate({
      model: "stories",
      prompt: "Once upon a time",
      format: "json",
      options: { temperature: 0, num_predict: 20 },
    });
    assert.match(j.response ?? "", /^\s*[{[]/);
  });

  test("embed (normalised, dimensions) and the older embeddings endpoint", async () => {
    const r = await ollama.embed({ model: "stories", input: ["Once upon a time", "a big red ball"] });
    assert.equal(r.embeddings.length, 2);
    assert.equal(r.embeddings[0]!.length, 64);
    const norm = Math.hypot(...r.embeddings[0]!);
    assert.ok(Math.abs(norm - 1) < 1e-4, String(norm));
    assert.ok(r.prompt_eval_count >= 8);
    assert.ok(r.total_duration > 0);
    const small = await ollama.embed({ model: "stories", input: "Once upon a time", dimensions: 16 });
    assert.equal(small.embeddings[0]!.length, 16);
    const old = await ollama.embeddings({ model: "stories", prompt: "Once upon a time" });
    assert.equal(old.embedding.length, 64);
    // The older endpoint is not normalised; same direction as the new one.
    const n = Math.hypot(...old.embedding);
    assert.ok(Math.abs(old.embedding[0]! / n - r.embeddings[0]![0]!) < 1e-4);
  });

  test("ps lists the loaded model with Ollama's fields; keep_alive 0 with an empty prompt unloads it", async () => {
    const loaded = await ollama.generate({ model: "stories", prompt: "" });
    assert.equal(loaded.done, true);
    assert.equal(loaded.done_reason, "load");
    const ps = await ollama.ps();
    const m = ps.models.find((x) => x.name === "stories:latest");
    assert.ok(m, JSON.stringify(ps));
    assert.equal(m.model, "stories:latest");
    assert.ok(m.size > 0);
    assert.equal(typeof m.size_vram, "number");
    assert.equal(typeof m.digest, "string");
    assert.deepEqual(Object.keys(m.details).sort(), [
      "families",
      "family",
      "format",
      "parameter_size",
      "parent_model",
      "quantization_level",
    ]);
    assert.equal(m.details.family, "llama");
    assert.equal(m.details.format, "gguf");
    assert.ok(!Number.isNaN(Date.parse(String(m.expires_at))));
    assert.equal((m as any).context_length, 512);
    // llmos' native fields are still there.
    assert.equal(typeof (m as any).slots, "number");

    const unloaded = await ollama.generate({ model: "stories", prompt: "", keep_alive: 0 });
    assert.equal(unloaded.done_reason, "unload");
    const after = await ollama.ps();
    assert.equal(after.models.filter((x) => x.name === "stories:latest").length, 0);
    // The same through /api/chat with no messages.
    const chatLoad = await ollama.chat({ model: "stories", messages: [] });
    assert.equal(chatLoad.done_reason, "load");
    assert.equal((await ollama.ps()).models.length, 1);
    const chatUnload = await ollama.chat({ model: "stories", messages: [], keep_alive: 0 });
    assert.equal(chatUnload.done_reason, "unload");
    assert.equal((await ollama.ps()).models.length, 0);
  });

  test("list, show, copy and delete (model management routes) through the same client", async () => {
    const list = await ollama.list();
    assert.ok(
      list.models.some((m) => m.name === "stories:latest"),
      JSON.stringify(list),
    );
    const show = await ollama.show({ model: "stories" });
    assert.equal(show.details.family, "llama");
    await ollama.copy({ source: "stories", destination: "stories-copy" });
    const copied = await ollama.show({ model: "stories-copy" });
    assert.deepEqual(copied.details, show.details);
    await ollama.delete({ model: "stories-copy" });
    assert.ok(!(await ollama.list()).models.some((m) => m.name === "stories-copy:latest"));
  });

  test("unknown model is a ResponseError with status 404", async () => {
    await assert.rejects(
      ollama.generate({ model: "nope", prompt: "hi" }),
      (e: ResponseError) => e.name === "ResponseError" && e.status_code === 404 && /nope/.test(e.error),
    );
    await assert.rejects(
      ollama.chat({ model: "nope", messages: [{ role: "user", content: "hi" }] }),
      (e: ResponseError) => e.status_code === 404,
    );
    await assert.rejects(ollama.embed({ model: "nope", input: "hi" }), (e: ResponseError) => e.status_code === 404);
  });
});
