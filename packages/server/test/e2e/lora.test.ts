import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";
import { writeStoriesLora } from "../support/lora.js";
import { STORIES_GOLDEN } from "../support/paths.js";

describe("ADAPTER: a LoRA adapter applied at load", () => {
  let d: TestDaemon;
  before(async () => (d = await startTestDaemon()));
  after(async () => d?.stop());

  test("a model created with ADAPTER shares the base blob, runs in its own runner and changes the output", async () => {
    const adapter = path.join(d.filesDir, "stories-lora.gguf");
    await writeStoriesLora(adapter);
    const created = await api(d, "POST", "/api/models/create", {
      name: "stories-lora",
      modelfile: `FROM stories\nADAPTER ${adapter}\n`,
      stream: false,
    });
    assert.equal(created.status, 200, created.text);
    const info = (await api(d, "GET", "/api/models/stories-lora")).json;
    const base = (await api(d, "GET", "/api/models/stories")).json;
    assert.equal(info.digest, base.digest, "the weights blob is shared");
    assert.equal(info.adapters.length, 1);
    assert.match(info.modelfile, /ADAPTER sha256:/);

    const complete = (model: string) =>
      api(d, "POST", "/v1/completions", { model, prompt: "Once upon a time", max_tokens: 30, temperature: 0 });
    const plain = await complete("stories");
    const tuned = await complete("stories-lora");
    assert.equal(plain.status, 200);
    assert.equal(tuned.status, 200, tuned.text);
    assert.ok(plain.json.choices[0].text.startsWith(STORIES_GOLDEN.slice(0, 40)));
    assert.notEqual(tuned.json.choices[0].text, plain.json.choices[0].text, "the adapter changes greedy output");
    const ps = (await api(d, "GET", "/api/ps")).json.models;
    const pids = new Set(ps.filter((m: any) => m.name.startsWith("stories")).map((m: any) => m.runnerPid));
    assert.equal(pids.size, 2, "a different adapter is a different runner");
  });

  test("an adapter file that is not GGUF is refused and nothing is registered", async () => {
    const bad = path.join(d.filesDir, "bad-adapter.gguf");
    (await import("node:fs")).writeFileSync(bad, "not a gguf file at all");
    const r = await api(d, "POST", "/api/models/create", {
      name: "bad-lora",
      modelfile: `FROM stories\nADAPTER ${bad}\n`,
      stream: false,
    });
    assert.equal(r.status, 400, r.text);
    assert.equal((await api(d, "GET", "/api/models/bad-lora")).status, 404);
  });
});
