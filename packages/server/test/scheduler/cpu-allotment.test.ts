/**
 * The CPU decision over hand-written snapshots: who gets how many threads on which CPUs, demand and priority,
 * floors, more busy runners than cores, and the hysteresis that keeps allotments from thrashing.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decideCpuAllotments, type CpuPlan } from "../../src/scheduler/cpu-allotment.js";
import type { ModelView, SchedulerSnapshot } from "../../src/scheduler/snapshot.js";
import { snapshot, view } from "./harness.js";

const NOW = 1_000_000;

/** Four cores, at most four threads per runner, a hold of 50 ms. */
function cpuSnapshot(models: ModelView[], cpu: Partial<SchedulerSnapshot["cpu"]> = {}): SchedulerSnapshot {
  return snapshot(models, { now: NOW, cpu: { cpus: [0, 1, 2, 3], maxThreadsPerRunner: 4, holdMs: 50, ...cpu } });
}

function threadsOf(plan: CpuPlan): Record<string, number> {
  return Object.fromEntries(plan.allotments.map((a) => [a.model, a.threads]));
}

function allotment(plan: CpuPlan, model: string) {
  const a = plan.allotments.find((x) => x.model === model);
  assert.ok(a, `no allotment for ${model}`);
  return a;
}

/** A ready model with `busy` running requests (interactive demand = busy + queued unless given). */
function busy(name: string, n: number, fields: Partial<ModelView> = {}): ModelView {
  return view(name, { busy: n, idleSince: null, ...fields });
}

describe("CPU allotments", () => {
  test("one busy runner gets every core; idle runners get none", () => {
    const plan = decideCpuAllotments(cpuSnapshot([busy("a", 1), view("b"), view("c")]));
    assert.deepEqual(threadsOf(plan), { a: 4, b: 0, c: 0 });
    assert.deepEqual(allotment(plan, "a").cpus, [0, 1, 2, 3]);
    assert.deepEqual(allotment(plan, "b").cpus, []);
    assert.equal(allotment(plan, "a").shared, false);
    assert.equal(plan.recheckAt, null);
  });

  test("a starting runner holds a core while it loads: the busy runner decodes on the others", () => {
    const loading = view("b", { state: "starting", cpu: null, idleSince: null });
    const plan = decideCpuAllotments(cpuSnapshot([busy("a", 1), loading], { cpus: [0, 1], maxThreadsPerRunner: 2 }));
    assert.deepEqual(threadsOf(plan), { a: 1 }, "no allotment for the starting runner; a leaves it a core");
    assert.equal(allotment(plan, "a").cpus.length, 1);
    const two = decideCpuAllotments(
      cpuSnapshot([busy("a", 1), busy("c", 1), loading], { cpus: [0, 1], maxThreadsPerRunner: 2 }),
    );
    assert.deepEqual(threadsOf(two), { a: 1, c: 1 }, "never below one thread each");
    const loaded = decideCpuAllotments(cpuSnapshot([busy("a", 1)], { cpus: [0, 1], maxThreadsPerRunner: 2 }));
    assert.deepEqual(threadsOf(loaded), { a: 2 }, "every core again once it has loaded");
  });

  test("no runner gets more than LLMOS_THREADS", () => {
    const plan = decideCpuAllotments(cpuSnapshot([busy("a", 1)], { maxThreadsPerRunner: 2 }));
    assert.deepEqual(threadsOf(plan), { a: 2 });
    assert.deepEqual(allotment(plan, "a").cpus, [0, 1]);
  });

  test("two busy runners with equal demand split the cores, on disjoint CPUs, and know they share", () => {
    const plan = decideCpuAllotments(cpuSnapshot([busy("a", 1), busy("b", 1)]));
    assert.deepEqual(threadsOf(plan), { a: 2, b: 2 });
    const [a, b] = [allotment(plan, "a"), allotment(plan, "b")];
    assert.equal(new Set([...a.cpus, ...b.cpus]).size, 4, "no CPU is given twice");
    assert.ok(a.shared && b.shared);
  });

  test("the split follows demand: running and queued requests, weighted", () => {
    const plan = decideCpuAllotments(
      cpuSnapshot([busy("a", 2, { queued: 1 }), busy("b", 1, { demand: { interactive: 1, batch: 0 } })]),
    );
    assert.deepEqual(threadsOf(plan), { a: 3, b: 1 });
    const weighted = decideCpuAllotments(
      cpuSnapshot([
        busy("a", 1, { demand: { interactive: 1, batch: 0 } }),
        busy("b", 1, { demand: { interactive: 3, batch: 0 } }),
      ]),
    );
    assert.deepEqual(threadsOf(weighted), { a: 1, b: 3 }, "a tenant's weight counts like that many requests");
  });

  test("interactive work comes first: a runner with only batch requests gets its floor", () => {
    const plan = decideCpuAllotments(
      cpuSnapshot([
        busy("a", 1, { demand: { interactive: 1, batch: 0 } }),
        busy("b", 4, { demand: { interactive: 0, batch: 4 } }),
      ]),
    );
    assert.deepEqual(threadsOf(plan), { a: 3, b: 1 });
  });

  test("batch-only runners share what interactive ones cannot take (LLMOS_THREADS)", () => {
    const plan = decideCpuAllotments(
      cpuSnapshot(
        [
          busy("a", 1, { demand: { interactive: 1, batch: 0 } }),
          busy("b", 4, { demand: { interactive: 0, batch: 4 } }),
        ],
        { maxThreadsPerRunner: 2 },
      ),
    );
    assert.deepEqual(threadsOf(plan), { a: 2, b: 2 });
  });

  test("a floor (minThreads) holds against demand; floors that do not fit shrink, never below one", () => {
    const floor = decideCpuAllotments(
      cpuSnapshot([busy("a", 4), busy("b", 1, { minThreads: 3, demand: { interactive: 1, batch: 0 } })]),
    );
    assert.deepEqual(threadsOf(floor), { a: 1, b: 3 });
    const tooMany = decideCpuAllotments(
      cpuSnapshot([busy("a", 1, { minThreads: 4 }), busy("b", 1, { minThreads: 4 }), busy("c", 1)]),
    );
    const t = threadsOf(tooMany);
    assert.equal(t.a! + t.b! + t.c!, 4);
    assert.ok(t.a! >= 1 && t.b! >= 1 && t.c! >= 1, JSON.stringify(t));
  });

  test("more busy runners than cores: one thread each, on every CPU", () => {
    const plan = decideCpuAllotments(
      cpuSnapshot([busy("a", 1), busy("b", 1), busy("c", 1)], { cpus: [0, 1], maxThreadsPerRunner: 2 }),
    );
    assert.deepEqual(threadsOf(plan), { a: 1, b: 1, c: 1 });
    for (const a of plan.allotments) assert.deepEqual(a.cpus, [0, 1]);
  });

  test("a draining model still has its requests running; loading and unloading ones have no runner to give to", () => {
    const plan = decideCpuAllotments(
      cpuSnapshot([
        busy("a", 1, { state: "draining" }),
        view("b", { state: "loading", queued: 2, cpu: null }),
        view("c", { state: "unloading", cpu: null }),
      ]),
    );
    assert.deepEqual(threadsOf(plan), { a: 4 });
  });

  test("the total never exceeds the cores, whatever the demand", () => {
    for (let n = 1; n <= 4; n++) {
      for (const cap of [1, 2, 3, 4]) {
        const models = Array.from({ length: n }, (_, i) => busy(`m${i}`, i + 1, { minThreads: i + 1 }));
        const plan = decideCpuAllotments(cpuSnapshot(models, { maxThreadsPerRunner: cap }));
        const total = plan.allotments.reduce((s, a) => s + a.threads, 0);
        assert.ok(total <= 4, `${n} runners, cap ${cap}: ${total} threads`);
        assert.ok(
          plan.allotments.every((a) => a.threads >= 1 && a.threads <= cap),
          JSON.stringify(threadsOf(plan)),
        );
        const cpus = plan.allotments.flatMap((a) => a.cpus);
        assert.equal(new Set(cpus).size, cpus.length, "CPU sets are disjoint");
      }
    }
  });

  test("runners keep the CPUs they have when the split changes", () => {
    const plan = decideCpuAllotments(
      cpuSnapshot([
        busy("a", 1, { cpu: { threads: 4, cpus: [0, 1, 2, 3], changedAt: 0 } }),
        busy("b", 1, { cpu: { threads: 0, cpus: [], changedAt: 0 } }),
        busy("c", 1, { cpu: { threads: 2, cpus: [2, 3], changedAt: 0 } }),
      ]),
    );
    assert.deepEqual(allotment(plan, "c").cpus, [2, 3].slice(0, allotment(plan, "c").threads));
    const a = allotment(plan, "a").cpus;
    assert.ok(
      a.every((c) => c === 0 || c === 1),
      `a keeps some of its own CPUs: ${a}`,
    );
  });
});

describe("CPU allotment hysteresis", () => {
  const recent = NOW - 10;

  test("a shrink is immediate; a newly busy runner gets its share at once", () => {
    const plan = decideCpuAllotments(
      cpuSnapshot([
        busy("a", 1, { cpu: { threads: 4, cpus: [0, 1, 2, 3], changedAt: recent } }),
        busy("b", 1, { cpu: { threads: 0, cpus: [], changedAt: recent } }),
      ]),
    );
    assert.deepEqual(threadsOf(plan), { a: 2, b: 2 });
  });

  test("growth waits until the hold after another runner went idle, then happens", () => {
    const models = [
      busy("a", 1, { cpu: { threads: 2, cpus: [0, 1], changedAt: NOW - 1000 } }),
      view("b", { lastActiveAt: recent, cpu: { threads: 2, cpus: [2, 3], changedAt: NOW - 1000 } }),
    ];
    const held = decideCpuAllotments(cpuSnapshot(models));
    assert.deepEqual(threadsOf(held), { a: 2, b: 0 });
    assert.equal(held.recheckAt, recent + 50);
    const later = decideCpuAllotments({ ...cpuSnapshot(models), now: recent + 50 });
    assert.deepEqual(threadsOf(later), { a: 4, b: 0 });
    assert.equal(later.recheckAt, null);
  });

  test("growth waits until the hold after the runner's own last change", () => {
    const plan = decideCpuAllotments(
      cpuSnapshot([busy("a", 1, { cpu: { threads: 2, cpus: [0, 1], changedAt: recent } })]),
    );
    assert.deepEqual(threadsOf(plan), { a: 2 });
    assert.equal(plan.recheckAt, recent + 50);
  });
});
