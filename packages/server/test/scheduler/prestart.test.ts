/**
 * The runner kept started ahead of the next load: when the scheduler keeps one (only in memory the budget has
 * free, never started beside a load, kept while a load may take it), and that its start holds a core.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decideCpuAllotments } from "../../src/scheduler/cpu-allotment.js";
import { planHousekeeping } from "../../src/scheduler/decisions.js";
import { FixedKeepAlivePolicy, type RoomDecision } from "../../src/scheduler/policy.js";
import { decidePrestart, decidePrestartRoom } from "../../src/scheduler/prestart.js";
import type { PrestartedState } from "../../src/runtime/runner-handle.js";
import type { ModelView, SchedulerSnapshot } from "../../src/scheduler/snapshot.js";
import { settle } from "../support/fake-clock.js";
import { PrestartingRunners } from "../support/fake-runner.js";
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

/** A policy that gives up the candidates it is told to, and records what it was asked. */
class RoomPolicy extends FixedKeepAlivePolicy {
  readonly asked: Array<{ candidates: string[]; neededBytes: number }> = [];
  constructor(private readonly give: (candidates: readonly ModelView[]) => string[]) {
    super();
  }
  roomForPrestart(candidates: readonly ModelView[], neededBytes: number): RoomDecision {
    this.asked.push({ candidates: candidates.map((m) => m.name), neededBytes });
    const unload = this.give(candidates);
    return { unload, askAgainAt: unload.length > 0 ? null : 5000 };
  }
}

describe("decidePrestartRoom", () => {
  const full = [view("a", { reservedBytes: 500 * MiB }), view("b", { reservedBytes: 460 * MiB })];
  const none = new Set<string>();
  const room = (...args: Parameters<typeof decidePrestartRoom>) => decidePrestartRoom(...args).unload;

  test("asks the policy for the memory missing when the budget is full, and unloads its choice", () => {
    const policy = new RoomPolicy((c) => [c[0]!.name]);
    assert.deepEqual(room(at(full, { prestart: kept("none") }), policy, none, false), ["a"]);
    assert.deepEqual(policy.asked, [{ candidates: ["a", "b"], neededBytes: 30 * MiB }]);
    const plan = planHousekeeping(at(full, { prestart: kept("none"), now: 1000 }), policy);
    assert.deepEqual(plan.unload, [{ model: "a", reason: "evicted" }]);
  });

  test("when the policy finds none worth it, the scheduler looks again when it asks", () => {
    const plan = planHousekeeping(at(full, { prestart: kept("none"), now: 1000 }), new RoomPolicy(() => []));
    assert.deepEqual(plan.unload, []);
    assert.equal(plan.wakeAt, 5000, "the RoomPolicy's askAgainAt (the keep-alives expire later)");
  });

  test("never a pinned, kept-forever, request-kept or busy model", () => {
    const policy = new RoomPolicy(() => []);
    const models = [
      view("p", { pinned: true, reservedBytes: 200 * MiB }),
      view("f", { keepAliveMs: -1, reservedBytes: 200 * MiB }),
      view("k", { keepAliveExplicit: true, reservedBytes: 200 * MiB }),
      view("i", { reservedBytes: 380 * MiB }),
    ];
    decidePrestartRoom(at(models, { prestart: kept("none") }), policy, none, false);
    assert.deepEqual(
      policy.asked.map((a) => a.candidates),
      [["i"]],
    );
    assert.throws(
      () => decidePrestartRoom(at(models, { prestart: kept("none") }), new RoomPolicy(() => ["k"]), none, false),
      /chose k, which may not be unloaded now/,
    );
  });

  test("not asked when a runner is held, starting or failed, while anything loads, runs or queues, or when it fits", () => {
    const policy = new RoomPolicy((c) => [c[0]!.name]);
    for (const state of ["ready", "starting", "failed"] as const)
      assert.deepEqual(room(at(full, { prestart: kept(state) }), policy, none, false), [], state);
    const others = [
      [view("a", { reservedBytes: 500 * MiB }), view("b", { state: "starting", reservedBytes: 460 * MiB })],
      [view("a", { reservedBytes: 500 * MiB }), view("b", { busy: 1, idleSince: null, reservedBytes: 460 * MiB })],
      [view("a", { reservedBytes: 500 * MiB }), view("b", { queued: 1, reservedBytes: 460 * MiB })],
      [view("a", { reservedBytes: 500 * MiB }), view("b", { reservedBytes: 400 * MiB })],
    ];
    for (const models of others)
      assert.deepEqual(room(at(models, { prestart: kept("none") }), policy, none, false), []);
    assert.deepEqual(room(at(full, { prestart: kept("none") }), policy, new Set(["b"]), false), [], "b going");
    assert.deepEqual(room(at(full, { prestart: kept("none") }), policy, none, true), [], "closing");
    assert.deepEqual(room(at(full, { prestart: undefined }), policy, none, false), [], "off");
    assert.deepEqual(policy.asked, []);
    const without = new FixedKeepAlivePolicy();
    assert.deepEqual(room(at(full, { prestart: kept("none") }), without, none, false), []);
  });
});

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
    assert.deepEqual(snap.prestart, { bytes: snap.prestart!.bytes, state: "none", startMs: null });
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
