/**
 * Memory for model-tool jobs (quantize, imatrix, eval workers), placed like a load: with fake runners and a fake
 * clock. The same with a real quantize worker and real runners: test/e2e/job-memory.test.ts.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { LlmosError } from "../../src/errors.js";
import { largestTensorElements } from "../../src/model-jobs/job-memory.js";
import { jobMemoryBytes } from "../../src/scheduler/job-estimate.js";
import { harness, MiB, settle, smallShape, use } from "./harness.js";

const code = (e: unknown) => (e instanceof LlmosError ? e.code : String(e));
const job = (bytes: number) => ({ job: "quantize", model: "src", bytes });

describe("memory reserved for jobs", () => {
  test("a reservation evicts idle models as a load would, and counts against the budget until released", async () => {
    const h = harness({ a: 400, b: 400, c: 400 });
    await use(h, "a");
    h.clock.advance(1000);
    await use(h, "b");
    const r = await h.scheduler.reserveMemory(job(500 * MiB));
    assert.deepEqual(h.ready(), ["b:latest"], "a, the least recently used, made room");
    assert.equal(h.scheduler.snapshot().jobBytes, 500 * MiB);
    assert.equal(h.scheduler.reservedBytes(), 900 * MiB);
    // A load meanwhile must not take the job's memory: c evicts b instead of squeezing in.
    await use(h, "c");
    assert.deepEqual(h.ready(), ["c:latest"]);
    r.release();
    r.release(); // idempotent
    assert.equal(h.scheduler.snapshot().jobBytes, undefined);
    await use(h, "a");
    assert.deepEqual(h.ready(), ["a:latest", "c:latest"], "the memory came back");
    const types = h.events.filter((e) => e.type.startsWith("job.")).map((e) => e.type);
    assert.deepEqual(types, ["job.reserved", "job.released"]);
  });

  test("busy models are waited for, never evicted; a load waits for a job's memory and starts when it is released", async () => {
    const h = harness({ a: 600, b: 600 });
    const lease = await h.scheduler.acquire("a");
    let reserved = false;
    const pending = h.scheduler.reserveMemory(job(600 * MiB)).then((r) => ((reserved = true), r));
    await settle();
    assert.equal(reserved, false, "a is busy");
    lease.release();
    const r = await pending;
    assert.deepEqual(h.ready(), [], "a went once idle");
    let granted = false;
    const b = h.scheduler.acquire("b").then((l) => ((granted = true), l));
    await settle();
    assert.equal(granted, false, "b waits for the job (it does not fail: the memory comes back)");
    r.release();
    (await b).release();
    assert.deepEqual(h.ready(), ["b:latest"]);
  });

  test("too big even with every evictable model gone: insufficient_memory at once; pinned models stay", async () => {
    const h = harness({ a: 400 });
    await h.scheduler.load("a", { pinned: true });
    const error = await h.scheduler.reserveMemory(job(700 * MiB)).catch((e: unknown) => e);
    assert.equal(code(error), "insufficient_memory");
    assert.match((error as Error).message, /quantize of src needs 700/);
    assert.deepEqual(h.ready(), ["a:latest"]);
    assert.equal(h.scheduler.snapshot().jobBytes, undefined);
  });

  test("a job cancelled while it waits for memory gives up with client_closed and holds nothing", async () => {
    const h = harness({ a: 600 });
    const lease = await h.scheduler.acquire("a");
    const abort = new AbortController();
    const pending = h.scheduler.reserveMemory(job(600 * MiB), abort.signal).catch((e: unknown) => e);
    await settle();
    abort.abort();
    assert.equal(code(await pending), "client_closed");
    lease.release();
    await settle();
    assert.equal(h.scheduler.snapshot().jobBytes, undefined);
    assert.deepEqual(h.ready(), ["a:latest"], "nothing was evicted for it");
  });

  test("a quantize worker reserves its baseline and three f32 copies of its largest tensor", () => {
    const largest = largestTensorElements([{ dims: [4096, 32000] }, { dims: [4096, 11008] }, { dims: [4096] }]);
    assert.equal(largest, 4096 * 32000);
    const bytes = (n: number) => jobMemoryBytes({ kind: "quantize", largestTensorElements: n });
    assert.equal(bytes(largest) - bytes(0), 12 * 4096 * 32000);
  });

  test("an eval worker reserves a load of each model it holds, one sequence of its context", () => {
    const summary = smallShape(100 * MiB);
    const one = jobMemoryBytes({ kind: "load", models: [{ summary, contextSize: 512, kvCacheType: "f16" }] });
    const kv = 8 * 8 * 64 * 512 * 4; // layers x heads x head size x tokens x (K + V in f16)
    assert.ok(one > 100 * MiB + kv, String(one));
    const two = jobMemoryBytes({
      kind: "load",
      models: [
        { summary, contextSize: 512, kvCacheType: "f16" },
        { summary, contextSize: 512, kvCacheType: "q8_0" },
      ],
    });
    assert.ok(two > one && two < 2 * one, "a q8_0 cache is smaller than an f16 one");
  });
});
