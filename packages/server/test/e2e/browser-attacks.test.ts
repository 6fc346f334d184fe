import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { adminHeaders, api, startTestDaemon, type TestDaemon } from "../support/daemon.js";

/** A raw request, so that Host, Origin and content-type are exactly what a browser (or an attacker) sends. */
function raw(
  d: { url: string },
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; json: any }> {
  const url = new URL(d.url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, method, path, headers, setHost: headers.host === undefined },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => {
          let json: any;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

describe("web pages cannot reach the daemon (no key created: the state of a new install)", () => {
  let d: TestDaemon;
  let port: string;
  before(async () => {
    d = await startTestDaemon({ corsOrigins: ["http://localhost:*"], allowedHosts: ["llm.internal"] });
    port = new URL(d.url).port;
  });
  after(async () => d?.stop());

  test("DNS rebinding: a Host the daemon does not know is refused before anything runs", async () => {
    const before = (await api(d, "GET", "/api/keys", undefined, adminHeaders(d))).json.keys.length;
    for (const [method, path, body] of [
      ["POST", "/api/keys", JSON.stringify({ name: "pwned", scopes: ["admin"] })],
      ["DELETE", "/api/models/stories", undefined],
      ["POST", "/api/pull", JSON.stringify({ model: "hf.co/evil/model" })],
      ["GET", "/api/tags", undefined],
      ["POST", "/api/store/gc", undefined],
    ] as const) {
      const r = await raw(
        d,
        method,
        path,
        { host: `rebind.attacker.example:${port}`, "content-type": "application/json", ...adminHeaders(d) },
        body,
      );
      assert.equal(r.status, 403, `${method} ${path}`);
      // Native routes answer { error: { code } }, Ollama routes { error, code }.
      assert.equal(r.json.error.code ?? r.json.code, "host_not_allowed", `${method} ${path}`);
    }
    assert.equal((await api(d, "GET", "/api/keys", undefined, adminHeaders(d))).json.keys.length, before);
    assert.equal((await api(d, "GET", "/api/models")).json.models.length, 1, "the model is still there");
    // Loopback names and addresses, and LLMOS_ALLOWED_HOSTS, are served.
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `llm.internal:${port}`, "localhost"])
      assert.equal((await raw(d, "GET", "/api/tags", { host })).status, 200, host);
  });

  test("a foreign Origin is refused, body-less POSTs and preflights included; the daemon's own and listed pass", async () => {
    // A page on another site sends a "simple" POST (no preflight) to store maintenance: refused, nothing runs.
    const gc = await raw(d, "POST", "/api/store/gc", { origin: "https://evil.example", ...adminHeaders(d) });
    assert.equal(gc.status, 403);
    assert.equal(gc.json.error.code, "origin_not_allowed");
    const chat = await raw(
      d,
      "POST",
      "/api/generate",
      { origin: "https://evil.example" },
      JSON.stringify({ model: "stories", prompt: "x", stream: false }),
    );
    assert.equal(chat.status, 403);
    assert.equal(chat.json.code, "origin_not_allowed");
    const preflight = await raw(d, "OPTIONS", "/api/generate", {
      origin: "https://evil.example",
      "access-control-request-method": "POST",
    });
    assert.equal(preflight.status, 403);
    assert.equal(preflight.headers["access-control-allow-origin"], undefined);
    // The daemon's own pages (its origin under any loopback name) may call it.
    const own = await raw(d, "GET", "/api/tags", { origin: `http://127.0.0.1:${port}` });
    assert.equal(own.status, 200);
    assert.equal((await raw(d, "GET", "/api/tags", { origin: `http://localhost:${port}` })).status, 200);
    // A listed origin (wildcard) gets CORS answers.
    const listed = await raw(d, "OPTIONS", "/api/generate", {
      origin: "http://localhost:5173",
      "access-control-request-method": "POST",
    });
    assert.equal(listed.status, 204);
    assert.equal(listed.headers["access-control-allow-origin"], "http://localhost:5173");
    // Clients that send no Origin (curl, SDKs) are not affected.
    assert.equal((await raw(d, "GET", "/api/tags", {})).status, 200);
  });

  test("without keys, loopback keeps inference and model management, but admin routes need the admin token", async () => {
    assert.equal((await api(d, "GET", "/api/tags")).status, 200);
    const minted = await api(d, "POST", "/api/keys", { name: "x", scopes: ["admin"] });
    assert.equal(minted.status, 401);
    assert.match(minted.json.error.message, /admin token/);
    for (const [method, path] of [
      ["GET", "/api/keys"],
      ["GET", "/api/audit"],
      ["GET", "/api/usage"],
      ["POST", "/api/store/gc"],
      ["POST", "/api/store/verify"],
      ["GET", "/api/system"],
    ] as const)
      assert.equal((await api(d, method, path)).status, 401, `${method} ${path}`);
    assert.equal((await api(d, "POST", "/api/store/gc", undefined, adminHeaders(d))).status, 200);
  });

  test("Ollama routes read a JSON body sent without content-type, like curl -d", async () => {
    const show = await raw(d, "POST", "/api/show", {}, JSON.stringify({ model: "stories" }));
    assert.equal(show.status, 200, JSON.stringify(show.json));
    assert.equal(show.json.details.family, "llama");
    const gen = await raw(
      d,
      "POST",
      "/api/generate",
      {},
      JSON.stringify({
        model: "stories",
        prompt: "Once upon a time",
        raw: true,
        stream: false,
        options: { num_predict: 4 },
      }),
    );
    assert.equal(gen.status, 200, JSON.stringify(gen.json));
    assert.equal(typeof gen.json.response, "string");
  });
});
