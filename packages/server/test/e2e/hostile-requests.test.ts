import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";

/** JSON text nested `levels` deep (JSON.stringify itself would overflow the stack building it). */
const deepObject = (levels: number) => '{"a":'.repeat(levels) + "1" + "}".repeat(levels);
const deepArray = (levels: number) => "[".repeat(levels) + "1" + "]".repeat(levels);

/**
 * Inputs a hostile client sends, each of which got a 500 (or a slow 502) before: every one must get a clear 4xx at
 * once, and the daemon must keep serving. One daemon for the file.
 */
describe("hostile requests get a 4xx", () => {
  let d: TestDaemon;
  // /proc may be imported from (so an unreadable file gets past the import policy to the read), and the fake hub
  // on loopback may be pulled from over http.
  before(async () => (d = await startTestDaemon({ importDirs: ["/proc"], pullAllowHttp: ["127.0.0.1"] })));
  after(async () => d?.stop());

  const post = (url: string, raw: string) => api(d, "POST", url, raw);
  const chat = (extra: string) =>
    post(
      "/v1/chat/completions",
      `{"model":"stories","messages":[{"role":"user","content":"hi"}],"max_tokens":2,${extra}}`,
    );

  test("JSON nested 10,000 deep in tools, format, options and messages: 400, no stack overflow", async () => {
    const cases: Array<[string, Promise<{ status: number; text: string }>]> = [
      [
        "tools[].function.parameters",
        chat(`"tools":[{"type":"function","function":{"name":"f","parameters":${deepObject(10_000)}}}]`),
      ],
      [
        "response_format schema",
        chat(`"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":${deepObject(10_000)}}}`),
      ],
      [
        "ollama format",
        post("/api/generate", `{"model":"stories","prompt":"hi","stream":false,"format":${deepObject(10_000)}}`),
      ],
      [
        "ollama options",
        post(
          "/api/generate",
          `{"model":"stories","prompt":"hi","stream":false,"options":{"temperature":${deepObject(10_000)}}}`,
        ),
      ],
      [
        "ollama stop",
        post("/api/chat", `{"model":"stories","stream":false,"messages":[],"options":{"stop":${deepArray(10_000)}}}`),
      ],
      [
        "ollama tool-call arguments",
        post(
          "/api/chat",
          `{"model":"stories","stream":false,"messages":[{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":${deepObject(10_000)}}}]},{"role":"user","content":"hi"}]}`,
        ),
      ],
      [
        "apply-template tools",
        post(
          "/api/apply-template",
          `{"model":"stories","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":${deepArray(10_000)}}}]}`,
        ),
      ],
      [
        "create parameters",
        post("/api/create", `{"model":"x","from":"stories","parameters":{"stop":${deepArray(10_000)}}}`),
      ],
    ];
    for (const [what, pending] of cases) {
      const r = await pending;
      assert.equal(r.status, 400, `${what}: ${r.text.slice(0, 300)}`);
      assert.match(r.text, /nested more than 64 levels/, what);
    }
    // Arguments given as a JSON string (which the body check cannot see into) are rendered as text, not walked.
    const args = JSON.stringify(deepArray(10_000));
    const r = await post(
      "/v1/chat/completions",
      `{"model":"stories","max_tokens":2,"messages":[{"role":"assistant","content":"","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":${args}}}]},{"role":"user","content":"hi"}]}`,
    );
    assert.ok(r.status < 500, r.text.slice(0, 300));
    assert.equal((await api(d, "GET", "/healthz")).status, 200);
  });

  test("schemas a grammar cannot express: 400 naming the keyword; bounds at the documented limit work", async () => {
    const schema = (s: unknown) =>
      chat(`"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":${JSON.stringify(s)}}}`);
    const refused: Array<[unknown, RegExp]> = [
      [{ type: "string", minLength: 1e9 }, /"minLength": 1000000000 is above 500/],
      [{ type: "array", items: { type: "string" }, minItems: 1e9 }, /"minItems": 1000000000/],
      [{ type: "string", maxLength: 5000 }, /"maxLength": 5000/],
      [{ $ref: "#/$defs/a", $defs: { a: { $ref: "#/$defs/b" }, b: { $ref: "#/$defs/a" } } }, /"\$ref" cycle/],
      [{ $ref: "#/$defs/n", $defs: { n: { type: "object", properties: { n: { $ref: "#/$defs/n" } } } } }, /never end/],
    ];
    for (const [s, message] of refused) {
      const r = await schema(s);
      assert.equal(r.status, 400, `${JSON.stringify(s)}: ${r.text}`);
      assert.match(JSON.parse(r.text).error.message, message);
    }
    const ollama = await post(
      "/api/chat",
      `{"model":"stories","stream":false,"messages":[{"role":"user","content":"hi"}],"format":{"type":"string","minLength":100000}}`,
    );
    assert.equal(ollama.status, 400, ollama.text);
    assert.match(ollama.text, /minLength/);
    // At the documented bound the grammar builds in the runner.
    for (const s of [
      { type: "string", minLength: 500, maxLength: 500 },
      { type: "array", items: { type: "object", properties: { a: { type: "string" } } }, minItems: 500, maxItems: 500 },
    ]) {
      const r = await schema(s);
      assert.equal(r.status, 200, `${JSON.stringify(s)}: ${r.text}`);
    }
  });

  test("token ids outside the vocabulary or int32: 400, on every route that takes ids", async () => {
    const cases: Array<[string, string, string, RegExp]> = [
      ["/v1/completions", `{"model":"stories","prompt":[1, 600],"max_tokens":2}`, "prompt[1]", /prompt\[1\] = 600/],
      ["/v1/completions", `{"model":"stories","prompt":[1, 4294967296],"max_tokens":2}`, "prompt", /2147483647/],
      ["/v1/completions", `{"model":"stories","prompt":[1, 2147483648],"max_tokens":2}`, "prompt", /2147483647/],
      ["/api/generate", `{"model":"stories","prompt":"hi","context":[1, 512],"stream":false}`, "context", /512/],
      ["/api/detokenize", `{"model":"stories","tokens":[4294967297]}`, "tokens", /2147483647/],
    ];
    for (const [url, body, what, message] of cases) {
      const r = await post(url, body);
      assert.equal(r.status, 400, `${url} ${what}: ${r.text}`);
      assert.match(r.text, message, `${url} ${what}`);
    }
    // The runner is fine afterwards.
    const ok = await post("/v1/completions", `{"model":"stories","prompt":[1, 450],"max_tokens":2}`);
    assert.equal(ok.status, 200, ok.text);
  });

  test("a file that cannot be read, in an import or a create: 400 at once", async () => {
    const imported = await api(d, "POST", "/api/models/import", { path: "/proc/self/mem", name: "mem" });
    assert.equal(imported.status, 400, imported.text);
    assert.match(imported.text, /cannot be read \(EIO\)/);
    const created = await api(d, "POST", "/api/create", {
      model: "mem",
      modelfile: "FROM /proc/self/mem",
      stream: false,
    });
    assert.equal(created.status, 400, created.text);
    assert.match(created.text, /cannot be read \(EIO\)/);
    const fromMem = await api(d, "POST", "/api/models/create", { name: "mem2", from: "/proc/self/mem", stream: false });
    assert.equal(fromMem.status, 400, fromMem.text);
    assert.match(fromMem.text, /cannot be read/);
  });

  test("a pull URL with credentials: 400 at once; a redirect to one: 502 without retries", async () => {
    const r = await api(d, "POST", "/api/models/pull", {
      reference: "https://user:secret@127.0.0.1:9/x.gguf",
      stream: false,
    });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.code, "invalid_reference");
    assert.doesNotMatch(r.text, /secret/);

    let hits = 0;
    const server = http.createServer((_req, res) => {
      hits++;
      res.writeHead(302, { location: `http://user:secret@127.0.0.1:${port}/model.gguf` }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const redirected = await api(d, "POST", "/api/models/pull", {
        reference: `http://127.0.0.1:${port}/model.gguf`,
        stream: false,
      });
      assert.equal(redirected.status, 502, redirected.text);
      // The pull URL policy refuses it before the fetch would (either way, a 502 naming why, no secret echoed).
      assert.match(redirected.text, /URLs? with credentials/);
      assert.doesNotMatch(redirected.text, /secret/);
      assert.equal(hits, 1, "retried a redirect that can never work");
    } finally {
      server.close();
    }
  });

  test("a Modelfile with 60,000 PARAMETER lines: 400 naming the limit, and the daemon keeps answering", async () => {
    const lines = "FROM stories\n" + "PARAMETER stop x\n".repeat(60_000);
    const pending = api(d, "POST", "/api/create", { model: "many", modelfile: lines });
    assert.equal((await api(d, "GET", "/healthz")).status, 200);
    const r = await pending;
    assert.equal(r.status, 400, r.text.slice(0, 300));
    assert.match(r.text, /line 66: parameter \\"stop\\" is given more than 64 times/);
    const instructions = "FROM stories\n" + "PARAMETER temperature 0.5\n".repeat(5000);
    const many = await api(d, "POST", "/api/create", { model: "many", modelfile: instructions });
    assert.equal(many.status, 400, many.text.slice(0, 300));
    assert.match(many.text, /more than 4096 instructions/);
    const fine = await api(d, "POST", "/api/create", {
      model: "fine",
      modelfile: "FROM stories\n" + "PARAMETER stop x\n".repeat(64),
      stream: false,
    });
    assert.equal(fine.status, 200, fine.text.slice(0, 300));
  });
});
