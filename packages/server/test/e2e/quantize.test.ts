/**
 * `llmos quantize` end to end: real llama.cpp quantization in a worker process, the result validated, stored,
 * loaded and generating; every refusal is a 4xx that leaves nothing behind; a cancel kills the worker.
 */
import assert from "node:assert/strict";
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { readGguf } from "@llmos/gguf";
import { largestTensorElements } from "../../src/model-jobs/job-memory.js";
import { jobMemoryBytes } from "../../src/scheduler/job-estimate.js";
import type { SchedulerEvent } from "../../src/scheduler/events.js";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";
import { TINY_RANDOM } from "../support/paths.js";
import { ndjsonLines, synth42m, toolWorkerPids } from "../support/quantize.js";

let d: TestDaemon;
const blobs = () => readdirSync(d.store.dirs.blobs).sort();
const tmpFiles = () => readdirSync(d.store.dirs.tmp);

async function quantize(body: Record<string, unknown>) {
  return api(d, "POST", "/api/models/quantize", { stream: false, ...body });
}

async function generate(model: string): Promise<string> {
  const res = await api(d, "POST", "/v1/completions", {
    model,
    prompt: "Once upon a time",
    max_tokens: 12,
    temperature: 0,
  });
  assert.equal(res.status, 200, res.text);
  return res.json.choices[0].text as string;
}

describe("quantize", () => {
  before(async () => {
    // The shared test models may be named by path (an importance matrix below), as an operator would allow.
    d = await startTestDaemon({ contextSize: 256, parallel: 1, importDirs: [path.dirname(TINY_RANDOM)] });
  });
  after(async () => {
    await d.stop();
  });

  test("stories260K to Q8_0, Q4_0 and Q4_K_M: valid, smaller, loads, generates, type and source in show", async () => {
    const source = await api(d, "GET", "/api/models/stories");
    const sourceFile = await readGguf(d.store.blobPath(source.json.digest));
    const sourceBytes = sourceFile.tensors.reduce((n, t) => n + t.size, 0);
    const sizes: Record<string, number> = {};
    for (const type of ["Q8_0", "Q4_0", "Q4_K_M"]) {
      const name = `stories-${type.toLowerCase()}`;
      const res = await quantize({ model: "stories", name, type });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json.model.name, `${name}:latest`);
      const show = await api(d, "GET", `/api/models/${name}`);
      assert.equal(show.json.details.quantization, type);
      assert.equal(show.json.quantizedFrom.sourceDigest, source.json.digest);
      assert.equal(show.json.quantizedFrom.type, type);
      assert.equal(show.json.quantizedFrom.tensors, 48);
      // stories260K's rows are 64 and 172 wide: the 172-wide ffn_down never fits a block, others miss k-quant's 256.
      assert.ok(show.json.quantizedFrom.fallbackTensors >= 5, JSON.stringify(show.json.quantizedFrom));
      const file = await readGguf(d.store.blobPath(show.json.digest)); // the reader validates the whole layout
      sizes[type] = file.tensors.reduce((n, t) => n + t.size, 0);
      assert.ok((await generate(name)).length > 0);
    }
    // F32 source: Q8_0 keeps ~8.5 bits of 32 where rows fit a block (ffn_down falls back to F16, norms stay F32).
    assert.ok(sizes.Q8_0! / sourceBytes > 0.26 && sizes.Q8_0! / sourceBytes < 0.36, JSON.stringify(sizes));
    assert.ok(sizes.Q4_0! / sourceBytes > 0.14 && sizes.Q4_0! / sourceBytes < 0.25, JSON.stringify(sizes));
    assert.ok(sizes.Q4_K_M! < sizes.Q8_0!, JSON.stringify(sizes));
  });

  test("quantizing twice gives the same sha256", async () => {
    const a = await quantize({ model: "stories", name: "twice-a", type: "Q4_0" });
    const b = await quantize({ model: "stories", name: "twice-b", type: "Q4_0" });
    assert.equal(a.status, 200, a.text);
    assert.equal(a.json.model.digest, b.json.model.digest);
  });

  test("the 42M synthetic model to Q8_0 and Q4_K_M, with streamed progress in tensors and bytes", async () => {
    await d.store.importFile(await synth42m(), "synth42m");
    const sourceSize = statSync(d.store.blobPath((await d.store.get("synth42m")).digest)).size;
    for (const [type, fallbacks, low, high] of [
      ["Q8_0", 0, 0.5, 0.56], // 8.5 of 16 bits
      // 4.5-6.5 of 16 bits; each layer's ffn_down (1376 columns, not a multiple of 256) falls back to Q5_0/Q8_0
      ["Q4_K_M", 8, 0.27, 0.42],
    ] as const) {
      const res = await fetch(`${d.url}/api/models/quantize`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "synth42m", name: `synth42m-${type}`, type }),
      });
      assert.equal(res.status, 200);
      const lines = [];
      for await (const line of ndjsonLines(res)) lines.push(line);
      const last = lines.at(-1);
      assert.equal(last.status, "success", JSON.stringify(last));
      const progress = lines.filter((l) => l.status === `quantizing ${type}`);
      assert.ok(progress.length >= 2, JSON.stringify(lines.slice(0, 5)));
      assert.equal(progress.at(-1).completed, progress.at(-1).total);
      assert.ok(progress.at(-1).bytes > 0);
      const info = (await api(d, "GET", `/api/models/synth42m-${type}`)).json;
      assert.equal(info.details.quantization, type);
      assert.equal(info.quantizedFrom.fallbackTensors, fallbacks);
      const ratio = info.size / sourceSize;
      assert.ok(ratio > low && ratio < high, `${type}: ${ratio}`);
      assert.ok((await generate(`synth42m-${type}`)).length > 0);
    }
  });

  test("an unknown type is a 400 listing the valid types; nothing is written", async () => {
    const before = blobs();
    const res = await quantize({ model: "stories", name: "bad", type: "Q4_K_X" });
    assert.equal(res.status, 400);
    assert.equal(res.json.error.code, "invalid_request");
    assert.match(res.json.error.message, /valid types: .*Q4_K_M.*Q8_0/);
    assert.deepEqual(blobs(), before);
    assert.equal((await api(d, "GET", "/api/models/bad")).status, 404);
  });

  test("a stored model whose blob changed on disk is refused as an invalid model file, not an internal error", async () => {
    await d.store.importFile(TINY_RANDOM, "changed");
    const file = d.store.blobPath((await d.store.get("changed")).digest);
    const original = readFileSync(file);
    try {
      writeFileSync(file, "not a model any more");
      const res = await quantize({ model: "changed", name: "changed-q8", type: "Q8_0" });
      assert.equal(res.json.error?.code, "invalid_model_file", res.text);
      assert.match(res.json.error.message, /not a valid GGUF file/);
      assert.equal((await api(d, "GET", "/api/models/changed-q8")).status, 404);
    } finally {
      writeFileSync(file, original);
    }
  });

  test("a type that needs an importance matrix refuses without one", async () => {
    const before = blobs();
    const res = await quantize({ model: "stories", name: "iq2", type: "IQ2_XXS" });
    assert.equal(res.status, 400);
    assert.equal(res.json.error.code, "imatrix_required");
    assert.deepEqual(blobs(), before);
    assert.deepEqual(tmpFiles(), []);
  });

  test("requantizing needs allowRequantize", async () => {
    await quantize({ model: "stories", name: "q8-src", type: "Q8_0" });
    const before = blobs();
    const refused = await quantize({ model: "q8-src", name: "requant", type: "Q4_0" });
    assert.equal(refused.status, 400);
    assert.equal(refused.json.error.code, "requantize_not_allowed");
    assert.deepEqual(blobs(), before);
    assert.deepEqual(tmpFiles(), []);
    const allowed = await quantize({ model: "q8-src", name: "requant", type: "Q4_0", allowRequantize: true });
    assert.equal(allowed.status, 200, allowed.text);
  });

  test("an importance matrix of another model is refused before any work", async () => {
    // A file that is a GGUF but not stories260K's importance matrix: llama-2-tiny-random's weights.
    const before = blobs();
    const res = await quantize({ model: "stories", name: "mismatch", type: "Q4_K_M", imatrix: TINY_RANDOM });
    assert.equal(res.status, 400);
    assert.equal(res.json.error.code, "imatrix_mismatch");
    assert.deepEqual(blobs(), before);
    assert.deepEqual(tmpFiles(), []);
  });

  test("a cancel (client gone) kills the worker and removes its temporary file within a second", async () => {
    const controller = new AbortController();
    const res = await fetch(`${d.url}/api/models/quantize`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "synth42m", name: "cancelled", type: "Q4_K_M" }),
      signal: controller.signal,
    });
    const lines = ndjsonLines(res);
    // Wait until the worker writes (progress with bytes), then go away.
    for (;;) {
      const { value, done } = await lines.next();
      assert.ok(!done, "stream ended before the quantization started");
      if (value.completed > 0) break;
    }
    assert.equal(toolWorkerPids().length, 1);
    assert.equal(tmpFiles().length, 1);
    controller.abort();
    const t0 = Date.now();
    while ((toolWorkerPids().length > 0 || tmpFiles().length > 0) && Date.now() - t0 < 5000)
      await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(toolWorkerPids(), []);
    assert.deepEqual(tmpFiles(), []);
    assert.ok(Date.now() - t0 < 1000, `cleanup took ${Date.now() - t0} ms`);
    assert.equal((await api(d, "GET", "/api/models/cancelled")).status, 404);
  });

  test("a quantize takes its worker's memory out of the budget: an idle model makes room, a pinned one refuses", async () => {
    const loadedModels = async () =>
      ((await api(d, "GET", "/api/ps")).json.models as Array<{ name: string }>).map((m) => m.name);
    for (const name of await loadedModels()) await api(d, "POST", `/api/models/${name}/unload`); // earlier tests'
    const load = await api(d, "POST", "/api/models/stories/load", {});
    assert.equal(load.status, 200, load.text);
    const modelBytes = load.json.memory.estimatedBytes as number;
    const source = await readGguf(d.store.blobPath((await api(d, "GET", "/api/models/stories")).json.digest));
    const jobBytes = jobMemoryBytes({ kind: "quantize", largestTensorElements: largestTensorElements(source.tensors) });
    // Room for either, not for both.
    const budget = d.scheduler.budgetBytes;
    d.scheduler.setLimits({
      memoryBudgetBytes: Math.max(modelBytes, jobBytes) + Math.floor(Math.min(modelBytes, jobBytes) / 2),
    });
    const events: SchedulerEvent[] = [];
    const off = d.scheduler.subscribe((e) => events.push(e));
    try {
      const res = await quantize({ model: "stories", name: "stories-room", type: "Q8_0" });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(await loadedModels(), [], "the idle model was evicted for the quantize worker");
      const seen = events
        .filter((e) => e.type === "model.unloaded" || e.type.startsWith("job."))
        .map((e) =>
          e.type === "model.unloaded" ? `${e.type}:${e.reason}` : `${e.type}:${"bytes" in e ? e.bytes : ""}`,
        );
      assert.deepEqual(seen, ["model.unloaded:evicted", `job.reserved:${jobBytes}`, `job.released:${jobBytes}`]);
      const metrics = await (await fetch(`${d.url}/metrics`)).text();
      assert.match(metrics, /^llmos_memory_bytes\{kind="jobs"\} 0$/m, "the memory came back");

      // Pinned, the model cannot make room: the quantize is refused before any worker starts, and nothing is left.
      assert.equal((await api(d, "POST", "/api/models/stories/load", { pinned: true })).status, 200);
      const refused = await quantize({ model: "stories", name: "stories-no-room", type: "Q8_0" });
      assert.equal(refused.status, 507, refused.text);
      assert.match(refused.text, /quantize of .* needs .* can be freed/);
      assert.deepEqual(tmpFiles(), []);
      assert.deepEqual(toolWorkerPids(), []);
      assert.equal((await api(d, "GET", "/api/models/stories-no-room")).status, 404);
      assert.deepEqual(await loadedModels(), ["stories:latest"]);
    } finally {
      off();
      d.scheduler.setLimits({ memoryBudgetBytes: budget });
      await api(d, "POST", "/api/models/stories/unload");
    }
  });

  test("Ollama's /api/create quantizes with its quantize field", async () => {
    const res = await api(d, "POST", "/api/create", {
      model: "ollama-q8",
      from: "stories",
      quantize: "q8_0",
      stream: false,
    });
    assert.equal(res.status, 200, res.text);
    const show = await api(d, "POST", "/api/show", { model: "ollama-q8" });
    assert.equal(show.json.details.quantization_level, "Q8_0");
    const bad = await api(d, "POST", "/api/create", { model: "ollama-bad", from: "stories", quantize: "q9" });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error, /valid types/);
  });
});
