/**
 * A runner started ahead of the next load, with real runners: the daemon keeps one while the budget has room, a
 * cold load takes it and only loads the weights (same answer, same sandbox and memory limit as a runner started
 * for the load), another follows; with LLMOS_PRESTART=off there is none; with no room in the budget there is none.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { SchedulerEvent } from "../../src/scheduler/events.js";
import { memoryLimitFor } from "../../src/runtime/sandbox/runner-launcher.js";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";
import { STORIES_GOLDEN, TINY_RANDOM } from "../support/paths.js";

async function until(what: string, fn: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const prestartState = (d: TestDaemon) => d.scheduler.snapshot().prestart?.state;

function complete(d: TestDaemon, model: string) {
  return api(d, "POST", "/v1/completions", { model, prompt: "Once upon a time", max_tokens: 30, temperature: 0 });
}

describe("prestarted runner (real runners)", { timeout: 300_000 }, () => {
  let d: TestDaemon;
  const events: SchedulerEvent[] = [];
  before(async () => {
    d = await startTestDaemon();
    await d.store.importFile(TINY_RANDOM, "tiny");
    d.scheduler.subscribe((e) => events.push(e));
  });
  after(async () => d?.stop());

  test("kept from start-up; a cold load takes it and answers as any runner does", async () => {
    await until("a prestarted runner is ready", () => prestartState(d) === "ready");
    const startMs = d.scheduler.snapshot().prestart?.startMs;
    assert.ok(typeof startMs === "number" && startMs > 0 && startMs < 30_000, `its start was measured: ${startMs}`);
    const r = await complete(d, "stories");
    assert.equal(r.status, 200, r.text);
    assert.ok(r.json.choices[0].text.startsWith(STORIES_GOLDEN));
    const loaded = events.find((e) => e.type === "model.loaded" && e.model === "stories:latest");
    assert.ok(loaded?.type === "model.loaded" && loaded.prestarted === true, JSON.stringify(loaded));
    const m = (await api(d, "GET", "/api/ps")).json.models.find((x: any) => x.name === "stories:latest");
    assert.ok(m.runnerPid > 0);
    // It was given this model's memory limit, as a runner started for the load gets (when cgroups allow one).
    if (m.memory.limitBytes !== null) assert.equal(m.memory.limitBytes, memoryLimitFor(m.memory.estimatedBytes, 0.15));
    const metrics = (await api(d, "GET", "/metrics")).text;
    assert.match(metrics, /llmos_memory_bytes\{kind="prestarted"\} [1-9]/, "the next one is counted");
  });

  test("another follows for the next load, and the loads' runners are distinct processes", async () => {
    await until("the next prestarted runner is ready", () => prestartState(d) === "ready");
    const r = await complete(d, "tiny");
    assert.equal(r.status, 200, r.text);
    const loaded = events.filter((e) => e.type === "model.loaded");
    assert.equal(loaded.length, 2);
    assert.ok(loaded.every((e) => e.type === "model.loaded" && e.prestarted === true));
    const pids = (await api(d, "GET", "/api/ps")).json.models.map((x: any) => x.runnerPid);
    assert.equal(new Set(pids).size, 2);
    // Both serve on.
    assert.ok((await complete(d, "stories")).json.choices[0].text.startsWith(STORIES_GOLDEN));
  });
});

describe("no prestarted runner", { timeout: 300_000 }, () => {
  test("with LLMOS_PRESTART=off", async () => {
    const d = await startTestDaemon({ prestart: false });
    try {
      const events: SchedulerEvent[] = [];
      d.scheduler.subscribe((e) => events.push(e));
      const r = await complete(d, "stories");
      assert.equal(r.status, 200, r.text);
      assert.equal(prestartState(d), undefined);
      const loaded = events.find((e) => e.type === "model.loaded");
      assert.ok(loaded?.type === "model.loaded" && loaded.prestarted === undefined);
    } finally {
      await d.stop();
    }
  });

  test("when the budget has no room beside the loaded model", async () => {
    // Room for stories260K's runner and not for a second runner's overhead.
    const probe = await startTestDaemon({ prestart: false });
    let reserved: number;
    try {
      assert.equal((await complete(probe, "stories")).status, 200);
      reserved = probe.scheduler.reservedBytes();
    } finally {
      await probe.stop();
    }
    const d = await startTestDaemon({ memoryBudgetBytes: reserved + 1024 * 1024 });
    try {
      await until("a prestarted runner while the budget is empty", () => prestartState(d) === "ready");
      assert.equal((await complete(d, "stories")).status, 200);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(prestartState(d), "none", "the loaded model leaves no room for one");
      assert.match((await api(d, "GET", "/metrics")).text, /llmos_memory_bytes\{kind="prestarted"\} 0/);
    } finally {
      await d.stop();
    }
  });
});
