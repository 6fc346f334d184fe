import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { TINY_RANDOM } from "../support/paths.js";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";

describe("utility endpoints and the OpenAPI document", () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon();
    await d.store.importFile(TINY_RANDOM, "tiny");
  });
  after(async () => d?.stop());

  test("tokenize: stories 'Once upon a time' without BOS, and with add_special", async () => {
    const r = await api(d, "POST", "/api/tokenize", { model: "stories", content: "Once upon a time" });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.tokens, [403, 407, 261, 378]);
    const bos = await api(d, "POST", "/api/tokenize", {
      model: "stories",
      content: "Once upon a time",
      add_special: true,
    });
    assert.deepEqual(bos.json.tokens, [1, 403, 407, 261, 378]);
    const back = await api(d, "POST", "/api/detokenize", { model: "stories", tokens: [403, 407, 261, 378] });
    assert.equal(back.json.content, "Once upon a time");
  });

  test("tokenize/detokenize round-trip a sentence through llama-2-tiny-random's 32k vocabulary", async () => {
    const sentence = "The quick brown fox jumps over the lazy dog, 42 times!";
    const t = await api(d, "POST", "/api/tokenize", { model: "tiny", content: sentence });
    assert.equal(t.status, 200, t.text);
    assert.ok(t.json.tokens.length > 5);
    assert.ok(
      t.json.tokens.some((id: number) => id > 1000),
      "ids from a large vocabulary",
    );
    const back = await api(d, "POST", "/api/detokenize", { model: "tiny", tokens: t.json.tokens });
    assert.equal(back.json.content, sentence);
  });

  test("apply-template renders the prompt the model sees (fallback format for a template-less model)", async () => {
    const r = await api(d, "POST", "/api/apply-template", {
      model: "stories",
      messages: [
        { role: "system", content: "Be kind." },
        { role: "user", content: "Hi" },
      ],
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.prompt, "Be kind.\n\nUser: Hi\nAssistant:");
    assert.equal(r.json.template, "fallback");
  });

  test("bad inputs are 400s, unknown models 404s", async () => {
    const cases: Array<[string, unknown]> = [
      ["/api/tokenize", { model: "stories" }],
      ["/api/tokenize", { model: "stories", content: 5 }],
      ["/api/tokenize", { model: "stories", content: "x", extra: 1 }],
      ["/api/detokenize", { model: "stories", tokens: ["a"] }],
      ["/api/detokenize", { model: "stories", tokens: [-1] }],
      ["/api/detokenize", { model: "stories", tokens: [99999999] }],
      ["/api/apply-template", { model: "stories", messages: [] }],
      ["/api/apply-template", { model: "stories", messages: [{ role: "robot", content: "x" }] }],
      [
        "/api/apply-template",
        {
          model: "stories",
          messages: [{ role: "user", content: "x" }],
          tools: [
            {
              type: "function",
              function: { name: "f", parameters: { type: "object", properties: { a: { type: 1 } } } },
            },
          ],
        },
      ],
    ];
    for (const [url, body] of cases) {
      const r = await api(d, "POST", url, body);
      assert.equal(r.status, 400, `${url} ${JSON.stringify(body)} -> ${r.status} ${r.text}`);
      assert.equal(r.json.error.code, "invalid_request");
    }
    const missing = await api(d, "POST", "/api/tokenize", { model: "nope", content: "x" });
    assert.equal(missing.status, 404);
  });

  test("GET /openapi.json is an OpenAPI 3.1 document with the native, OpenAI and Ollama paths", async () => {
    const r = await api(d, "GET", "/openapi.json");
    assert.equal(r.status, 200);
    const doc = r.json;
    assert.match(doc.openapi, /^3\.1\.\d+$/);
    for (const path of [
      "/v1/chat/completions",
      "/v1/completions",
      "/v1/embeddings",
      "/api/generate",
      "/api/chat",
      "/api/embed",
      "/api/ps",
      "/api/tokenize",
      "/api/apply-template",
      "/api/models/{name}/load",
    ]) {
      assert.ok(doc.paths[path], `missing ${path}`);
    }
    const chat = doc.paths["/v1/chat/completions"].post;
    assert.equal(chat.summary, "Chat completion (OpenAI)");
    const schema = chat.requestBody.content["application/json"].schema;
    assert.ok(schema.properties.messages, "messages in the chat request schema");
    assert.ok(schema.required.includes("model"));
    assert.ok(doc.paths["/api/generate"].post.requestBody.content["application/json"].schema.properties.prompt);
    assert.ok(doc.paths["/api/tokenize"].post.requestBody.content["application/json"].schema.properties.content);
    // Documented response shapes.
    assert.ok(
      doc.paths["/api/generate"].post.responses["200"].content["application/json"].schema.properties.eval_duration,
    );
    assert.ok(doc.paths["/api/tokenize"].post.responses["200"].content["application/json"].schema.properties.tokens);
  });

  test("GET /docs renders a self-contained HTML reference with security headers", async () => {
    const res = await fetch(d.url + "/docs");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/html/);
    assert.equal(res.headers.get("content-security-policy"), "default-src 'none'; style-src 'unsafe-inline'");
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    assert.equal(res.headers.get("x-frame-options"), "DENY");
    assert.equal(res.headers.get("referrer-policy"), "no-referrer");
    const html = await res.text();
    assert.match(html, /^<!doctype html>/);
    for (const text of [
      "/v1/chat/completions",
      "/api/generate",
      "/api/tokenize",
      "Chat completion (OpenAI)",
      "openai",
      "ollama",
      "utility",
      "Response 200",
      "eval_duration",
    ])
      assert.ok(html.includes(text), `missing ${text}`);
    assert.doesNotMatch(html, /<script|https?:\/\/(?!127)/i, "no scripts, no external assets");
  });
});
