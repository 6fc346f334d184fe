import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";
import { STORIES } from "../support/paths.js";
import { EVAL_TEXT } from "../support/quantize.js";

/** A loopback HTTP server answering each path with a handler. */
async function serve(
  routes: Record<string, (res: http.ServerResponse) => void>,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const handler = routes[req.url ?? ""];
    if (!handler) return res.writeHead(404).end();
    handler(res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });
const errorCode = (json: any) => json?.error?.code ?? json?.code;

describe("a key can do what its scopes and allow-list say, and nothing more", () => {
  let d: TestDaemon;
  const k: Record<string, string> = {};
  let server: Awaited<ReturnType<typeof serve>>;

  before(async () => {
    server = await serve({
      "/secret.gguf": (res) => res.writeHead(200, { "content-type": "text/plain" }).end("TOPSECRET internal data"),
      "/to-private": (res) => res.writeHead(302, { location: "https://10.255.255.1/x.gguf" }).end(),
    });
    // The loopback helper is reachable over http as "localhost" only; 127.0.0.1 is not allowed.
    d = await startTestDaemon({ pullAllowHttp: ["localhost"], maxKeepAliveMs: 30 * 60_000 });
    await d.store.copy("stories", "other");
    const mint = async (name: string, scopes: any[], extra: Record<string, unknown> = {}) =>
      (k[name] = (await d.security.keys.create({ name, scopes, ...extra })).secret);
    await mint("admin", ["admin"]);
    await mint("writer", ["models:write"]);
    await mint("writerMine", ["models:write"], { models: ["mine*"] });
    await mint("reader", ["models:read"], { models: ["stories"] });
    await mint("inference", ["inference"], { models: ["stories"] });
    await mint("limited", ["inference"], { rpm: 4 });
    await mint("jobsStories", ["models:write", "models:read"], { models: ["stories*"] });
  });
  after(async () => {
    await d?.stop();
    await server?.close();
  });

  test("models:write cannot read the server's files: import and FROM/ADAPTER paths outside LLMOS_IMPORT_DIRS", async () => {
    const secretFile = path.join(d.home, "admin.token");
    const attempts: Array<[string, unknown]> = [
      ["/api/models/import", { path: secretFile, name: "x" }],
      ["/api/models/import", { path: "/etc/passwd", name: "x" }],
      ["/api/models/import", { path: "/no/such/file.gguf", name: "x" }],
      ["/api/models/import", { path: `${d.filesDir}/../${path.basename(d.home)}/admin.token`, name: "x" }],
      ["/api/models/create", { name: "x", modelfile: `FROM ${STORIES}\n`, stream: false }],
      ["/api/models/create", { name: "x", modelfile: "FROM stories\nADAPTER /etc/hostname\n", stream: false }],
      ["/api/create", { model: "x", from: "/etc/passwd", stream: false }],
    ];
    const messages = new Set<string>();
    for (const [url, body] of attempts) {
      const r = await api(d, "POST", url, body, bearer(k.writer!));
      assert.equal(r.status, 403, `${url} ${JSON.stringify(body)}: ${r.text}`);
      assert.equal(errorCode(r.json), "path_not_allowed");
      assert.ok(!r.text.includes("llmos-admin-"), "no file bytes in the answer");
      messages.add(r.json.error?.message ?? r.json.error);
    }
    // Existing or not, every refusal of a path import reads the same.
    assert.equal([...messages].filter((m) => m.startsWith("path:")).length, 1, [...messages].join("\n"));
    const models = (await api(d, "GET", "/api/models", undefined, bearer(k.admin!))).json.models;
    assert.equal(models.length, 2, "nothing was registered");
  });

  test("inside LLMOS_IMPORT_DIRS a path works; a bad file there is refused without quoting it; blobs work anywhere", async () => {
    const good = path.join(d.filesDir, "stories.gguf");
    fs.copyFileSync(STORIES, good);
    const ok = await api(d, "POST", "/api/models/import", { path: good, name: "imported" }, bearer(k.writer!));
    assert.equal(ok.status, 200, ok.text);
    const junk = path.join(d.filesDir, "junk.gguf");
    fs.writeFileSync(junk, "TOPSECRET: do not show this to anyone\n");
    const bad = await api(d, "POST", "/api/models/import", { path: junk, name: "junk" }, bearer(k.writer!));
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, "invalid_model_file");
    assert.ok(!bad.text.includes("TOPS"), bad.text);
    // Ollama's way for files of the client: upload a blob, then FROM @sha256:<hex>.
    const data = fs.readFileSync(STORIES);
    const digest = `sha256:${createHash("sha256").update(data).digest("hex")}`;
    const up = await fetch(`${d.url}/api/blobs/${digest}`, { method: "POST", body: data, headers: bearer(k.writer!) });
    assert.equal(up.status, 201);
    const created = await api(
      d,
      "POST",
      "/api/models/create",
      { name: "from-blob", modelfile: `FROM @${digest}\nPARAMETER temperature 0\n`, stream: false },
      bearer(k.writer!),
    );
    assert.equal(created.status, 200, created.text);
  });

  test("the allow-list covers listings and the base a Modelfile names", async () => {
    const names = (json: any, field: string) => json[field].map((m: any) => m.name ?? m.id).sort();
    assert.deepEqual(names((await api(d, "GET", "/api/tags", undefined, bearer(k.reader!))).json, "models"), [
      "stories:latest",
    ]);
    assert.deepEqual(names((await api(d, "GET", "/v1/models", undefined, bearer(k.reader!))).json, "data"), [
      "stories:latest",
    ]);
    assert.deepEqual(names((await api(d, "GET", "/api/models", undefined, bearer(k.reader!))).json, "models"), [
      "stories:latest",
    ]);
    assert.deepEqual(names((await api(d, "GET", "/api/store/usage", undefined, bearer(k.reader!))).json, "models"), [
      "stories:latest",
    ]);
    assert.ok(
      names((await api(d, "GET", "/api/tags", undefined, bearer(k.admin!))).json, "models").includes("other:latest"),
    );
    await api(d, "POST", "/api/models/other/load", {}, bearer(k.admin!));
    await api(d, "POST", "/api/models/stories/load", {}, bearer(k.admin!));
    const ps = await api(d, "GET", "/api/ps", undefined, bearer(k.reader!));
    assert.deepEqual(names(ps.json, "models"), ["stories:latest"]);
    // mine* may create mine-x, but not from a base it may not use.
    const fromOther = await api(
      d,
      "POST",
      "/api/models/create",
      { name: "mine-x", modelfile: "FROM other\nSYSTEM hi\n", stream: false },
      bearer(k.writerMine!),
    );
    assert.equal(fromOther.status, 403, fromOther.text);
    assert.match(fromOther.json.error.message, /other/);
  });

  test("jobs: an eval's base is in the allow-list; jobs on other models are not found, listed or cancelled", async () => {
    const mine = bearer(k.jobsStories!);
    const withBase = await api(
      d,
      "POST",
      "/api/jobs/eval",
      { model: "stories", base: "other", text: EVAL_TEXT, maxChunks: 1 },
      mine,
    );
    assert.equal(withBase.status, 403, withBase.text);
    assert.match(withBase.json.error.message, /other/);
    // Another tenant's job on a model this key may not use.
    const theirs = await api(
      d,
      "POST",
      "/api/jobs/eval",
      { model: "other", text: EVAL_TEXT, maxChunks: 1 },
      bearer(k.admin!),
    );
    assert.equal(theirs.status, 202, theirs.text);
    const id = theirs.json.id as string;
    for (const [method, route] of [
      ["GET", `/api/jobs/${id}`],
      ["GET", `/api/jobs/${id}/events`],
      ["GET", `/api/jobs/${id}/output`],
      ["DELETE", `/api/jobs/${id}`],
    ] as const) {
      const r = await api(d, method, route, undefined, mine);
      assert.equal(r.status, 404, `${method} ${route}: ${r.text}`);
      assert.equal(errorCode(r.json), "not_found");
    }
    const ids = async (secret: string) =>
      (await api(d, "GET", "/api/jobs", undefined, bearer(secret))).json.jobs.map((j: any) => j.id);
    assert.ok(!(await ids(k.jobsStories!)).includes(id), "not listed to the restricted key");
    assert.ok((await ids(k.admin!)).includes(id), "listed to the admin");
    // Its own job it sees; the other one ran to its end, not cancelled by the restricted key.
    const own = await api(d, "POST", "/api/jobs/eval", { model: "stories", text: EVAL_TEXT, maxChunks: 1 }, mine);
    assert.equal(own.status, 202, own.text);
    assert.ok((await ids(k.jobsStories!)).includes(own.json.id));
    const settled = async (jobId: string) => {
      for (;;) {
        const v = (await api(d, "GET", `/api/jobs/${jobId}`, undefined, bearer(k.admin!))).json;
        if (v.state !== "queued" && v.state !== "running") return v;
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    assert.equal((await settled(id)).state, "succeeded");
    assert.equal((await settled(own.json.id)).state, "succeeded");
  });

  test("load, pin, unload and keep_alive -1 need models:write; keep_alive is capped at LLMOS_MAX_KEEP_ALIVE", async () => {
    for (const who of ["reader", "inference"]) {
      assert.equal((await api(d, "POST", "/api/models/stories/load", {}, bearer(k[who]!))).status, 403, who);
      assert.equal((await api(d, "POST", "/api/models/stories/unload", undefined, bearer(k[who]!))).status, 403, who);
    }
    const gen = (keep_alive: unknown) =>
      api(
        d,
        "POST",
        "/api/generate",
        { model: "stories", prompt: "Once", raw: true, stream: false, keep_alive, options: { num_predict: 1 } },
        bearer(k.inference!),
      );
    for (const ka of [-1, "-1m", 0, "0s"]) {
      const r = await gen(ka);
      assert.equal(r.status, 403, `keep_alive ${ka}: ${r.text}`);
      assert.match(r.json.error, /models:write/);
    }
    assert.equal((await gen("10h")).status, 200);
    const ps = await api(d, "GET", "/api/ps", undefined, bearer(k.admin!));
    const stories = ps.json.models.find((m: any) => m.name === "stories:latest");
    assert.ok(stories.keepAliveMs > 0 && stories.keepAliveMs <= 30 * 60_000, String(stories.keepAliveMs));
    // With models:write it may pin (keep_alive -1).
    const pinned = await api(d, "POST", "/api/models/stories/load", { keepAlive: -1 }, bearer(k.writer!));
    assert.equal(pinned.status, 200, pinned.text);
  });

  test("num_ctx stays within [256, training context]; a reload it causes counts against the key's rate limit", async () => {
    const gen = (num_ctx: number) =>
      api(
        d,
        "POST",
        "/api/generate",
        { model: "stories", prompt: "Once", raw: true, stream: false, options: { num_ctx, num_predict: 1 } },
        bearer(k.limited!),
      );
    const tiny = await gen(64);
    assert.equal(tiny.status, 400);
    assert.match(tiny.json.error, /num_ctx/);
    // rpm 4: the refused one above, one at 512 (the size it is loaded with: no reload) and one at 1024 (a reload:
    // it counts twice) use up the minute, so the next is refused.
    assert.equal((await gen(512)).status, 200);
    assert.equal((await gen(1024)).status, 200);
    const third = await gen(1024);
    assert.equal(third.status, 429, third.text);
  });

  test("pulls: https only, http only to LLMOS_PULL_ALLOW_HTTP hosts, no redirect into private networks, no echoed bodies", async () => {
    const pull = (reference: string) =>
      api(d, "POST", "/api/models/pull", { reference, stream: false }, bearer(k.writer!));
    const plain = await pull(`http://127.0.0.1:${server.port}/secret.gguf`);
    assert.equal(plain.status, 400);
    assert.equal(plain.json.error.code, "invalid_reference");
    assert.match(plain.json.error.message, /LLMOS_PULL_ALLOW_HTTP/);
    const junk = await pull(`http://localhost:${server.port}/secret.gguf`);
    assert.equal(junk.status, 400, junk.text);
    assert.equal(junk.json.error.code, "invalid_model_file");
    assert.ok(!junk.text.includes("TOPS"), junk.text);
    const bounce = await pull(`http://localhost:${server.port}/to-private`);
    // localhost may redirect within loopback, not into a private network (the server asked for it: 502).
    assert.equal(bounce.status, 502, bounce.text);
    assert.equal(bounce.json.error.code, "upstream_error");
    assert.match(bounce.json.error.message, /a redirect\): it is a private address/);
  });
});
