/**
 * KV cache types end to end: a model loads with the daemon's type (LLMOS_KV_CACHE_TYPE) or its own PARAMETER, the
 * memory estimate follows it, it generates; a model whose head size cannot use it falls back (daemon setting) or
 * is refused (its own setting); `eval` measures the cost of a quantized cache against f16.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";
import { EVAL_TEXT, ndjsonLines } from "../support/quantize.js";
import { slowModel } from "../support/synth.js";

let d: TestDaemon;

async function generate(model: string) {
  const res = await api(d, "POST", "/v1/completions", { model, prompt: "Hello", max_tokens: 8, temperature: 0 });
  assert.equal(res.status, 200, res.text);
  return res.json.choices[0].text as string;
}
const psOf = async (name: string) =>
  (await api(d, "GET", "/api/ps")).json.models.find((m: any) => m.name === `${name}:latest`);

describe("KV cache types", () => {
  before(async () => {
    // The daemon's setting: q8_0 for K and V. The synthetic model's heads are 32 wide (256 / 8).
    d = await startTestDaemon({ kvCacheType: { k: "q8_0", v: "q8_0" }, contextSize: 1024, parallel: 1 });
    await d.store.importFile(await slowModel(), "synth");
    const f16 = await api(d, "POST", "/api/models/create", {
      name: "synth-f16",
      modelfile: "FROM synth\nPARAMETER kv_cache_type f16\n",
      stream: false,
    });
    assert.equal(f16.status, 200, f16.text);
    const q4 = await api(d, "POST", "/api/models/create", {
      name: "synth-q4",
      modelfile: "FROM synth\nPARAMETER kv_cache_type_v q4_0\n",
      stream: false,
    });
    assert.equal(q4.status, 200, q4.text);
  });
  after(async () => {
    await d.stop();
  });

  test("the daemon's type and a model's PARAMETER: ps shows them, the estimate follows, both generate", async () => {
    assert.ok((await generate("synth")).length > 0);
    assert.ok((await generate("synth-f16")).length > 0);
    assert.ok((await generate("synth-q4")).length > 0);
    const q8 = await psOf("synth");
    const f16 = await psOf("synth-f16");
    const q4 = await psOf("synth-q4");
    assert.deepEqual(q8.kvCacheType, { k: "q8_0", v: "q8_0" });
    assert.deepEqual(f16.kvCacheType, { k: "f16", v: "f16" });
    assert.deepEqual(q4.kvCacheType, { k: "q8_0", v: "q4_0" });
    // 4 layers x 256 x 1024 tokens: f16 K+V = 4 MiB; q8_0 K+V = 2.125 MiB; q8_0 K + q4_0 V = 1.625 MiB.
    const mib = 1024 * 1024;
    assert.equal(f16.memory.kvCacheBytes, 4 * mib);
    assert.equal(q8.memory.kvCacheBytes, 2.125 * mib);
    assert.equal(q4.memory.kvCacheBytes, 1.625 * mib);
  });

  test("stories260K's 8-wide heads: the daemon's q8_0 falls back to f16; its own q8_0 PARAMETER is refused", async () => {
    assert.ok((await generate("stories")).length > 0);
    assert.deepEqual((await psOf("stories")).kvCacheType, { k: "f16", v: "f16" });
    await api(d, "POST", "/api/models/create", {
      name: "stories-q8kv",
      modelfile: "FROM stories\nPARAMETER kv_cache_type q8_0\n",
      stream: false,
    });
    const res = await api(d, "POST", "/v1/completions", { model: "stories-q8kv", prompt: "Hi", max_tokens: 2 });
    assert.equal(res.status, 400);
    assert.match(res.json.error.message, /multiple of 32; this model's are 8/);
    const bad = await api(d, "POST", "/api/models/create", {
      name: "x",
      modelfile: "FROM stories\nPARAMETER kv_cache_type q5_1\n",
    });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /must be one of f16, q8_0, q4_0/);
  });

  test("eval measures a quantized cache's cost against f16 on the same model", async () => {
    const run = async (kvCacheType: string) => {
      const started = await api(d, "POST", "/api/jobs/eval", {
        model: "synth",
        base: "synth",
        text: EVAL_TEXT,
        contextSize: 128,
        maxChunks: 3,
        kvCacheType,
        baseKvCacheType: "f16",
      });
      assert.equal(started.status, 202, started.text);
      let last: any;
      for await (const v of ndjsonLines(await fetch(`${d.url}/api/jobs/${started.json.id}/events`))) last = v;
      assert.equal(last.state, "succeeded", JSON.stringify(last.error));
      return last.result;
    };
    const same = await run("f16");
    const q8 = await run("q8_0");
    const q4 = await run("q4_0");
    assert.equal(same.kld.mean, 0);
    assert.ok(q8.kld.mean > 0 && q8.kld.mean < q4.kld.mean, JSON.stringify([q8.kld, q4.kld]));
    assert.equal(q4.kvCacheType, "q4_0");
  });
});
