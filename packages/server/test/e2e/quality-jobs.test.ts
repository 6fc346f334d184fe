/**
 * `llmos eval` and `llmos imatrix` through the jobs API, end to end on stories260K: perplexity and KL divergence
 * ordered as quantization error grows, an importance matrix computed by the engine and used by a quantize that
 * needs one, and job cancel.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { readImatrix } from "@llmos/gguf";
import type { SchedulerEvent } from "../../src/scheduler/events.js";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";
import { EVAL_TEXT, ndjsonLines, runJob, toolWorkerPids } from "../support/quantize.js";

let d: TestDaemon;

async function evalJob(model: string, base?: string, extra: Record<string, unknown> = {}) {
  const view = await runJob(d, "eval", { model, ...(base ? { base } : {}), text: EVAL_TEXT, ...extra });
  assert.equal(view.state, "succeeded", JSON.stringify(view.error));
  return view.result;
}

describe("quality jobs", () => {
  before(async () => {
    d = await startTestDaemon({ contextSize: 256, parallel: 1 });
    for (const type of ["Q8_0", "Q4_K_M", "Q2_K"]) {
      const res = await api(d, "POST", "/api/models/quantize", {
        model: "stories",
        name: `stories-${type}`,
        type,
        stream: false,
      });
      assert.equal(res.status, 200, res.text);
    }
  });
  after(async () => {
    await d.stop();
  });

  test("a model against itself: KL divergence 0, perplexity ratio 1.000, every top token the same", async () => {
    const events: SchedulerEvent[] = [];
    const off = d.scheduler.subscribe((e) => events.push(e));
    const r = await evalJob("stories", "stories", { maxChunks: 8 });
    off();
    // The worker held both copies loaded: its memory was taken out of the budget, and given back.
    const jobs = events.flatMap((e) => (e.type === "job.reserved" || e.type === "job.released" ? [e] : []));
    assert.deepEqual(
      jobs.map((e) => [e.type, e.job, e.model]),
      [
        ["job.reserved", "eval", "stories:latest"],
        ["job.released", "eval", "stories:latest"],
      ],
    );
    const one = (await api(d, "POST", "/api/models/stories/load", { contextSize: 128, parallel: 1 })).json;
    await api(d, "POST", "/api/models/stories/unload");
    // (A runner's estimate uses the overhead runners measured, the job's the default one: close, not equal.)
    const ratio = jobs[0]!.bytes / (2 * one.memory.estimatedBytes);
    assert.ok(
      ratio > 0.75 && ratio < 1.25,
      `eval reserved ${jobs[0]!.bytes}, two loads of 128 tokens ${2 * one.memory.estimatedBytes}`,
    );
    assert.ok(r.kld.mean <= 1e-9 && r.kld.p99 <= 1e-9, JSON.stringify(r.kld));
    assert.equal(r.perplexityRatio.toFixed(3), "1.000");
    assert.equal(r.topTokenAgreement, 1);
    assert.equal(r.contextSize, 128);
    assert.equal(r.chunks, 8);
    assert.equal(r.tokens, 8 * 63); // positions 64..126 of each 128-token chunk
  });

  test("KLD(Q8_0) < KLD(Q4_K_M) < KLD(Q2_K) against F32, and perplexity(Q8_0) / perplexity(F32) <= 1.01", async () => {
    // 24 chunks: 1512 scored positions, a quarter of the text, enough to order them (and to keep the test short).
    const q8 = await evalJob("stories-Q8_0", "stories", { maxChunks: 24 });
    const q4 = await evalJob("stories-Q4_K_M", "stories", { maxChunks: 24 });
    const q2 = await evalJob("stories-Q2_K", "stories", { maxChunks: 24 });
    assert.ok(q8.kld.mean < q4.kld.mean && q4.kld.mean < q2.kld.mean, JSON.stringify([q8.kld, q4.kld, q2.kld]));
    assert.ok(q8.perplexityRatio <= 1.01, String(q8.perplexityRatio));
    assert.ok(q8.topTokenAgreement > q2.topTokenAgreement);
    // Perplexity alone, without a base.
    const alone = await evalJob("stories", undefined, { maxChunks: 4 });
    assert.ok(alone.perplexity > 1 && alone.kld === undefined);
  });

  test("an unknown model (404) or KV type (400) starts no job; a text too short for a chunk fails its job", async () => {
    const short = await api(d, "POST", "/api/jobs/eval", { model: "stories", text: "Once upon a time." });
    assert.equal(short.status, 202); // the text is checked by the worker: the job fails with the reason
    const view = (await api(d, "GET", `/api/jobs/${short.json.id}`)).json;
    assert.ok(view.id);
    const missing = await api(d, "POST", "/api/jobs/eval", { model: "nope", text: EVAL_TEXT });
    assert.equal(missing.status, 404);
    const badKv = await api(d, "POST", "/api/jobs/eval", { model: "stories", text: EVAL_TEXT, kvCacheType: "q3" });
    assert.equal(badKv.status, 400);
    let last: any;
    for await (const v of ndjsonLines(await fetch(`${d.url}/api/jobs/${short.json.id}/events`))) last = v;
    assert.equal(last.state, "failed");
    assert.equal(last.error.code, "invalid_request");
    assert.match(last.error.message, /needs at least 128/);
  });

  test("an importance matrix computed by the engine: a valid imatrix file, accepted by a quantize that needs one", async () => {
    const view = await runJob(d, "imatrix", {
      model: "stories",
      text: EVAL_TEXT,
      textName: "eval-text.txt",
      contextSize: 128,
    });
    assert.equal(view.state, "succeeded", JSON.stringify(view.error));
    const report = view.result;
    assert.equal(report.entries, 5 * 7); // q, k, v, output, gate, up, down of 5 layers
    const out = await fetch(`${d.url}/api/jobs/${view.id}/output`);
    assert.equal(out.status, 200);
    // In the daemon's LLMOS_IMPORT_DIRS, so it may also be named by path below.
    const file = path.join(d.filesDir, `llmos-imatrix-${process.pid}.gguf`);
    writeFileSync(file, Buffer.from(await out.arrayBuffer()));
    const imatrix = await readImatrix(file);
    assert.deepEqual(imatrix.datasets, ["eval-text.txt"]);
    assert.equal(imatrix.chunkSize, 128);
    const q = imatrix.entries.get("blk.0.attn_q.weight")!;
    assert.equal(q.sums.length, 64);
    assert.ok(q.counts[0]! >= 128 && q.sums.every((x) => x > 0));

    const res = await api(d, "POST", "/api/models/quantize", {
      model: "stories",
      name: "stories-iq2",
      type: "IQ2_XXS",
      imatrix: report.digest,
      stream: false,
    });
    assert.equal(res.status, 200, res.text);
    const show = (await api(d, "GET", "/api/models/stories-iq2")).json;
    assert.equal(show.quantizedFrom.imatrixDigest, report.digest);
    // The same file by path works too (inside LLMOS_IMPORT_DIRS; elsewhere the path is refused).
    const outside = await api(d, "POST", "/api/models/quantize", {
      model: "stories",
      name: "stories-outside",
      type: "Q4_K_M",
      imatrix: path.join(os.tmpdir(), "anything.gguf"),
      stream: false,
    });
    assert.equal(outside.status, 403, outside.text);
    assert.equal(outside.json.error.code, "path_not_allowed");
    const byPath = await api(d, "POST", "/api/models/quantize", {
      model: "stories",
      name: "stories-q4km-imatrix",
      type: "Q4_K_M",
      imatrix: file,
      stream: false,
    });
    assert.equal(byPath.status, 200, byPath.text);
  });

  test("cancelling a running job kills its worker", async () => {
    const started = await api(d, "POST", "/api/jobs/eval", { model: "stories", base: "stories-Q2_K", text: EVAL_TEXT });
    const id = started.json.id;
    const t0 = Date.now();
    while ((await api(d, "GET", `/api/jobs/${id}`)).json.progress.done < 1 && Date.now() - t0 < 30_000)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal(toolWorkerPids().length, 1);
    const cancelled = await api(d, "DELETE", `/api/jobs/${id}`);
    assert.equal(cancelled.json.state, "cancelled");
    const t1 = Date.now();
    while (toolWorkerPids().length > 0 && Date.now() - t1 < 5000) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(toolWorkerPids(), []);
    assert.ok(Date.now() - t1 < 1000);
    const list = (await api(d, "GET", "/api/jobs")).json.jobs;
    assert.equal(list[0].id, id);
  });

  // Last: once a key exists, callers without one are refused.
  test("a key may keep 4 jobs waiting; the next is refused with 503 queue_full until one is gone", async () => {
    const key = await d.security.keys.create({ name: "jobs", scopes: ["models:write", "models:read"] });
    const auth = { authorization: `Bearer ${key.secret}` };
    const submit = () => api(d, "POST", "/api/jobs/eval", { model: "stories", text: EVAL_TEXT }, auth);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await submit();
      assert.equal(r.status, 202, r.text);
      ids.push(r.json.id);
    }
    assert.equal((await api(d, "GET", `/api/jobs/${ids[0]}`, undefined, auth)).json.state, "running");
    const refused = await submit();
    assert.equal(refused.status, 503, refused.text);
    assert.equal(refused.json.error.code, "queue_full");
    assert.equal((await api(d, "DELETE", `/api/jobs/${ids[4]}`, undefined, auth)).json.state, "cancelled");
    const again = await submit();
    assert.equal(again.status, 202, again.text);
    for (const id of [...ids, again.json.id]) await api(d, "DELETE", `/api/jobs/${id}`, undefined, auth);
  });
});
