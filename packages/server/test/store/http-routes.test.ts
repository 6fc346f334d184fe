import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { Ollama } from "ollama";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";
import { FakeHub } from "../support/fake-hub.js";
import { STORIES, STORIES_SHA256, TINY, TINY_SHA256 } from "./helpers.js";

/** Parses an NDJSON body. */
function lines(text: string): Array<Record<string, any>> {
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

describe("model management over HTTP (native and Ollama-compatible)", () => {
  let hub: FakeHub;
  let d: TestDaemon;
  let ollama: Ollama;

  before(async () => {
    hub = await FakeHub.start({
      "test/stories-GGUF": { files: { "stories260K-Q4_K_M.gguf": STORIES, "tiny-Q8_0.gguf": TINY } },
      "test/gated": { files: { "model.gguf": STORIES }, gated: true },
    });
    d = await startTestDaemon({ hfEndpoint: hub.url, hfToken: undefined, pullAllowHttp: ["127.0.0.1"] });
    ollama = new Ollama({ host: d.url });
  });
  after(async () => {
    await d?.stop();
    await hub?.close();
  });

  test("native pull streams NDJSON progress and ends with the model", async () => {
    const r = await api(d, "POST", "/api/models/pull", { reference: "hf.co/test/stories-GGUF:Q8_0" });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("content-type"), "application/x-ndjson");
    const events = lines(r.text);
    assert.equal(events[0]!.status, "pulling manifest");
    assert.ok(
      events.some((e) => e.status === `pulling ${TINY_SHA256.slice(0, 12)}` && e.total === fs.statSync(TINY).size),
    );
    const last = events.at(-1)!;
    assert.equal(last.status, "success");
    assert.equal(last.model.name, "hf.co/test/stories-gguf:Q8_0");
    assert.equal(last.model.digest, `sha256:${TINY_SHA256}`);
    // A namespaced name works in the path when encoded.
    const show = await api(d, "GET", `/api/models/${encodeURIComponent("hf.co/test/stories-gguf:Q8_0")}`);
    assert.equal(show.status, 200);
    assert.equal(show.json.details.architecture, "llama");
  });

  test("native pull errors: 400 before streaming, error line after", async () => {
    const bad = await api(d, "POST", "/api/models/pull", { reference: "not a reference" });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, "invalid_reference");
    const gated = await api(d, "POST", "/api/models/pull", { reference: "hf.co/test/gated" });
    const last = lines(gated.text).at(-1)!;
    assert.equal(last.error.code, "forbidden");
    assert.match(last.error.message, /HF_TOKEN/);
    const unstreamed = await api(d, "POST", "/api/models/pull", { reference: "hf.co/test/gated", stream: false });
    assert.equal(unstreamed.status, 403);
    assert.equal(unstreamed.json.error.code, "forbidden");
  });

  test("native create from a Modelfile and from fields", async () => {
    const r = await api(d, "POST", "/api/models/create", {
      name: "teller",
      modelfile: "FROM stories\nPARAMETER temperature 0.3\nSYSTEM Tell a story.",
      stream: false,
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.model.name, "teller:latest");
    const info = await api(d, "GET", "/api/models/teller");
    assert.deepEqual(info.json.parameters, { temperature: 0.3 });
    assert.equal(info.json.system, "Tell a story.");
    const fields = await api(d, "POST", "/api/models/create", {
      name: "teller2",
      from: "teller",
      parameters: { top_k: 5 },
    });
    assert.equal(lines(fields.text).at(-1)!.status, "success");
    assert.deepEqual((await api(d, "GET", "/api/models/teller2")).json.parameters, { temperature: 0.3, top_k: 5 });
    const bad = await api(d, "POST", "/api/models/create", { name: "x", modelfile: "FROM stories\nPARAMETER nope 1" });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /line 2/);
  });

  test("the ollama client: list, show, copy, delete", async () => {
    const tags = await ollama.list();
    const stories = tags.models.find((m) => m.name === "stories:latest")!;
    assert.equal(stories.digest, STORIES_SHA256);
    assert.equal(stories.details.format, "gguf");
    assert.equal(stories.details.family, "llama");
    const show = await ollama.show({ model: "teller" });
    assert.match(show.modelfile, new RegExp(`FROM sha256:${STORIES_SHA256}`));
    assert.match(show.parameters, /temperature\s+0\.3/);
    assert.equal(show.system, "Tell a story.");
    assert.equal((show.model_info as unknown as Record<string, unknown>)["general.architecture"], "llama");
    await ollama.copy({ source: "teller", destination: "teller-copy" });
    assert.ok((await ollama.list()).models.some((m) => m.name === "teller-copy:latest"));
    await ollama.delete({ model: "teller-copy" });
    assert.ok(!(await ollama.list()).models.some((m) => m.name === "teller-copy:latest"));
    await assert.rejects(ollama.delete({ model: "teller-copy" }), /not found/);
    await assert.rejects(ollama.show({ model: "ghost" }), /ghost/);
  });

  test("the ollama client: pull (streamed and not) and create", async () => {
    const progress: string[] = [];
    for await (const p of await ollama.pull({ model: "hf.co/test/stories-GGUF:Q4_K_M", stream: true }))
      progress.push(p.status);
    assert.equal(progress[0], "pulling manifest");
    assert.equal(progress.at(-1), "success");
    const done = await ollama.pull({ model: "hf.co/test/stories-GGUF:Q4_K_M", stream: false });
    assert.equal(done.status, "success");
    // The name pulled is the name to use.
    const show = await ollama.show({ model: "hf.co/test/stories-GGUF:Q4_K_M" });
    assert.equal(show.details.family, "llama");
    await assert.rejects(ollama.pull({ model: "hf.co/test/gated", stream: false }), /gated/);

    const created: string[] = [];
    for await (const p of await ollama.create({
      model: "ollama-made",
      from: "stories",
      system: "Be brief.",
      parameters: { stop: ["END"] },
      stream: true,
    })) {
      created.push(p.status);
    }
    assert.equal(created.at(-1), "success");
    const made = await api(d, "GET", "/api/models/ollama-made");
    assert.equal(made.json.system, "Be brief.");
    assert.deepEqual(made.json.parameters, { stop: ["END"] });
  });

  test("blobs: HEAD/POST /api/blobs/:digest then create from files", async () => {
    const digest = `sha256:${TINY_SHA256}`;
    const missing = await fetch(`${d.url}/api/blobs/sha256:${"0".repeat(64)}`, { method: "HEAD" });
    assert.equal(missing.status, 404);
    const wrong = await fetch(`${d.url}/api/blobs/sha256:${"1".repeat(64)}`, {
      method: "POST",
      body: fs.readFileSync(TINY),
    });
    assert.equal(wrong.status, 400);
    assert.match(((await wrong.json()) as { error: string }).error, /digest mismatch/);
    const put = await fetch(`${d.url}/api/blobs/${digest}`, {
      method: "POST",
      body: fs.readFileSync(TINY),
      headers: { "content-type": "application/octet-stream" },
    });
    assert.equal(put.status, 201);
    assert.equal((await fetch(`${d.url}/api/blobs/${digest}`, { method: "HEAD" })).status, 200);
    const bad = await fetch(`${d.url}/api/blobs/md5:abc`, { method: "HEAD" });
    assert.equal(bad.status, 400);
    const r = await api(d, "POST", "/api/create", {
      model: "from-files",
      files: { "tiny.gguf": digest },
      stream: false,
    });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { status: "success" });
    assert.equal((await ollama.show({ model: "from-files" })).details.family, "llama");
    const noFrom = await api(d, "POST", "/api/create", { model: "nothing" });
    assert.equal(noFrom.status, 400);
    assert.equal(typeof noFrom.json.error, "string");
  });
});
