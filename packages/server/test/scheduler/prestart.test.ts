/**
 * The runner kept started ahead of the next load: when the scheduler keeps one (only in memory the budget has
 * free, never started beside a load, kept while a load may take it), and that its start holds a core.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decideCpuAllotments } from "../../src/scheduler/cpu-allotment.js";
import { decidePrestart } from "../../src/scheduler/prestart.js";
import type { PrestartedState, RunnerEngineSpec } from "../../src/runtime/runner-handle.js";
import type { SchedulerSnapshot } from "../../src/scheduler/snapshot.js";
import { settle } from "../support/fake-clock.js";
import { FakeRunners } from "../support/fake-runner.js";
import { harness, MiB, snapshot, use, view } from "./harness.js";

const kept = (state: PrestartedState = "ready") => ({ bytes: 70 * MiB, state });

function at(models: Parameters<typeof snapshot>[0], fields: Partial<SchedulerSnapshot> = {}): SchedulerSnapshot {
  return snapshot(models, { memoryBudgetBytes: 1000 * MiB, prestart: kept(), ...fields });
}

describe("decidePrestart", () => {
  test("kept while the budget has its memory free", () => {
    assert.equal(decidePrestart(at([view("a", { reservedBytes: 900 * MiB })]), false), "start");
    assert.equal(decidePrestart(at([view("a", { reservedBytes: 931 * MiB })]), false), "stop");
  });

  test("jobs' memory counts too", () => {
    assert.equal(decidePrestart(at([view("a", { reservedBytes: 800 * MiB })], { jobBytes: 150 * MiB }), false), "stop");
  });

  test("not started while a runner is busy (it would take a core from a step under way); kept if it exists", () => {
    const busy = view("a", { busy: 1, idleSince: null, reservedBytes: 100 * MiB });
    assert.equal(decidePrestart(at([busy], { prestart: kept("none") }), false), "leave");
    assert.equal(decidePrestart(at([busy], { prestart: kept("ready") }), false), "start");
    assert.equal(
      decidePrestart(at([view("a", { reservedBytes: 100 * MiB })], { prestart: kept("none") }), false),
      "start",
    );
  });

  test("never started beside a load, and not stopped while a load may take it", () => {
    const loading = view("b", { state: "starting", reservedBytes: 100 * MiB, idleSince: null });
    assert.equal(decidePrestart(at([loading]), false), "leave");
    assert.equal(decidePrestart(at([view("a", { reservedBytes: 950 * MiB }), loading]), false), "leave");
  });

  test("none when the feature is off or the scheduler is closing", () => {
    assert.equal(decidePrestart(at([], { prestart: undefined }), false), "stop");
    assert.equal(decidePrestart(at([]), true), "stop");
  });

  test("while it starts it holds a core: a busy runner decodes on the others", () => {
    const cpu = { cpus: [0, 1], maxThreadsPerRunner: 2, holdMs: 50 };
    const busy = view("a", { busy: 1, idleSince: null });
    const threads = (s: SchedulerSnapshot) => decideCpuAllotments(s).allotments.find((x) => x.model === "a")?.threads;
    assert.equal(threads(at([busy], { cpu, prestart: kept("starting") })), 1);
    assert.equal(threads(at([busy], { cpu, prestart: kept("ready") })), 2);
  });
});

/** Fake runners that keep a prestarted runner as told (ready at once) and count the loads that took it. */
class PrestartingRunners extends FakeRunners {
  readonly asked: Array<RunnerEngineSpec | null> = [];
  held: RunnerEngineSpec | null = null;
  took = 0;
  private listener: (() => void) | undefined;

  prestart(engine: RunnerEngineSpec | null): void {
    this.asked.push(engine);
    const changed = (engine === null) !== (this.held === null);
    this.held = engine;
    if (changed) queueMicrotask(() => this.listener?.());
  }
  prestartedState(): PrestartedState {
    return this.held ? "ready" : "none";
  }
  onPrestartedChange(listener: () => void): () => void {
    this.listener = listener;
    return () => (this.listener = undefined);
  }
  override async start(...args: Parameters<FakeRunners["start"]>) {
    if (this.held) {
      this.took++;
      this.held = null;
    }
    return super.start(...args);
  }
}

describe("the scheduler keeps a prestarted runner", () => {
  test("in free memory: one after start-up, the next load takes it, another follows while there is room", async () => {
    const runners = new PrestartingRunners();
    const h = harness({ a: 300, b: 300, c: 300 }, { prestart: true, memoryBudgetBytes: 650 * MiB }, { runners });
    await settle();
    assert.ok(runners.held, "one kept from start-up");
    assert.equal(runners.held.engine, "llama-ffi");
    await use(h, "a");
    assert.equal(runners.took, 1, "the load took it");
    await settle();
    assert.ok(runners.held, "another, with 350 MiB still free");
    await use(h, "b");
    await settle();
    assert.equal(runners.took, 2);
    assert.equal(runners.held, null, "50 MiB free: no room for one");
    const snap = h.scheduler.snapshot();
    assert.deepEqual(snap.prestart, { bytes: snap.prestart!.bytes, state: "none" });
  });

  test("off: never asked for", async () => {
    const runners = new PrestartingRunners();
    const h = harness({ a: 300 }, { memoryBudgetBytes: 700 * MiB }, { runners });
    await use(h, "a");
    assert.deepEqual(runners.asked, []);
    assert.equal(h.scheduler.snapshot().prestart, undefined);
  });

  test("stopped at shutdown", async () => {
    const runners = new PrestartingRunners();
    const h = harness({ a: 300 }, { prestart: true, memoryBudgetBytes: 700 * MiB }, { runners });
    await settle();
    assert.ok(runners.held);
    await h.scheduler.shutdown(0);
    assert.equal(runners.held, null);
  });
});
