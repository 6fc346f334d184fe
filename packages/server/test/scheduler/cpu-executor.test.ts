/**
 * CPU allotments applied, with fake runners and a fake clock: what each runner is told and when, in what order
 * against its requests, the hold before growing back, CPU sets through a placement, tenant weights and floors,
 * and a crash. The same behaviour runs with real runners in test/e2e/cpu-sharing.test.ts.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { CpuPlacement } from "../../src/runtime/cpu-placement.js";
import type { SlotLease } from "../../src/scheduler/model-entry.js";
import type { FakeRunner } from "../support/fake-runner.js";
import { harness, settle, type Harness } from "./harness.js";

const TWO_CORES = { cpus: [0, 1], threads: 2, cpuHoldMs: 50 };

function runner(h: Harness, model: string): FakeRunner {
  const r = h.runners.live(`${model}:latest`)[0];
  assert.ok(r, `no runner for ${model}`);
  return r;
}

async function threadsInPs(h: Harness): Promise<Record<string, number>> {
  const ps = await h.scheduler.ps();
  return Object.fromEntries(ps.models.map((m) => [m.name.replace(/:latest$/, ""), m.cpu.threads]));
}

/** Holds a slot of `model` until released. */
async function hold(h: Harness, model: string, opts: Parameters<Harness["scheduler"]["acquire"]>[1] = {}) {
  const lease = await h.scheduler.acquire(model, opts);
  await settle();
  return lease;
}

describe("CPU allotments applied to runners", () => {
  test("a runner is told its share before its request decodes; a second busy model halves it; it grows back after the hold", async () => {
    const h = harness({ a: 100, b: 100 }, TWO_CORES);
    await h.scheduler.load("a");
    await h.scheduler.load("b");
    const a = runner(h, "a");
    const b = runner(h, "b");
    assert.equal(a.threads, 2, "runners start with every core they may get");

    const leaseA = await hold(h, "a");
    leaseA.handle.generate({ prompt: "x", maxTokens: 1, sampling: {} as never, stop: [] });
    assert.deepEqual(await threadsInPs(h), { a: 2, b: 0 });
    assert.deepEqual(a.allotments, [], "alone, a already has both cores: no message");

    const leaseB = await hold(h, "b");
    leaseB.handle.generate({ prompt: "x", maxTokens: 1, sampling: {} as never, stop: [] });
    assert.deepEqual(await threadsInPs(h), { a: 1, b: 1 });
    assert.deepEqual(a.allotments.at(-1), { threads: 1, shared: true });
    assert.deepEqual(b.calls, ["cpu:1", "generate"], "b's allotment went out before its request's first decode");

    leaseB.release();
    await settle();
    assert.deepEqual(await threadsInPs(h), { a: 1, b: 0 }, "a does not grow at once");
    await h.clock.advance(49);
    assert.deepEqual(await threadsInPs(h), { a: 1, b: 0 });
    await h.clock.advance(1);
    assert.deepEqual(await threadsInPs(h), { a: 2, b: 0 }, "50 ms after b went idle, a has both cores again");
    assert.deepEqual(a.allotments.at(-1), { threads: 2, shared: false });
    leaseA.release();
    await settle();
    assert.deepEqual(await threadsInPs(h), { a: 0, b: 0 });
  });

  test("requests that come and go within the hold do not make the other runner's allotment thrash", async () => {
    const h = harness({ a: 100, b: 100 }, TWO_CORES);
    await h.scheduler.load("a");
    await h.scheduler.load("b");
    const leaseA = await hold(h, "a");
    for (let i = 0; i < 5; i++) {
      const lease = await hold(h, "b");
      await h.clock.advance(5);
      lease.release();
      await h.clock.advance(5);
    }
    const a = runner(h, "a");
    assert.deepEqual(a.allotments, [{ threads: 1, shared: true }], "a shrank once and waited");
    await h.clock.advance(50);
    assert.deepEqual(a.allotments.at(-1), { threads: 2, shared: false });
    leaseA.release();
  });

  test("/api/ps never shows more threads than cores while models come and go", async () => {
    const h = harness({ a: 100, b: 100, c: 100 }, { cpus: [0, 1, 2], threads: 3, cpuHoldMs: 50 });
    const leases: SlotLease[] = [];
    for (const m of ["a", "b", "c", "a", "b"]) {
      leases.push(await hold(h, m));
      const ps = await h.scheduler.ps();
      assert.ok(ps.cpu.allottedThreads <= 3, JSON.stringify(await threadsInPs(h)));
      assert.equal(
        ps.cpu.allottedThreads,
        ps.models.reduce((n, x) => n + x.cpu.threads, 0),
      );
    }
    for (const lease of leases) {
      lease.release();
      await h.clock.advance(20);
      assert.ok((await h.scheduler.ps()).cpu.allottedThreads <= 3);
    }
    await h.clock.advance(100);
    assert.deepEqual(await threadsInPs(h), { a: 0, b: 0, c: 0 });
  });

  test("tenant weights and floors decide the split", async () => {
    const weights: Record<string, number> = { "key:gold": 3, "key:free": 1 };
    const h = harness(
      { a: 100, b: 100, c: 100 },
      { cpus: [0, 1, 2, 3], threads: 4, cpuHoldMs: 50 },
      { tenantWeight: (t) => weights[t] ?? 1 },
    );
    const gold = await hold(h, "a", { tenant: "key:gold" });
    const free = await hold(h, "b", { tenant: "key:free" });
    assert.deepEqual(await threadsInPs(h), { a: 3, b: 1 });
    const ps = await h.scheduler.ps();
    assert.equal(ps.models.find((m) => m.name === "a:latest")?.cpu.demand, 3);
    await h.scheduler.load("c", { minThreads: 2 });
    const floor = await hold(h, "c", { tenant: "key:free" });
    const t = await threadsInPs(h);
    assert.equal(t.c, 2, `c's floor: ${JSON.stringify(t)}`);
    assert.equal(t.a! + t.b! + t.c!, 4);
    for (const l of [gold, free, floor]) l.release();
  });

  test("a batch-only model gets its floor while an interactive one is busy", async () => {
    const h = harness({ a: 100, b: 100 }, { cpus: [0, 1, 2, 3], threads: 4, cpuHoldMs: 50 });
    const batch = [await hold(h, "b", { priority: "batch" }), await hold(h, "b", { priority: "batch" })];
    assert.deepEqual(await threadsInPs(h), { b: 4 }, "alone, batch work takes every core");
    const chat = await hold(h, "a");
    assert.deepEqual(await threadsInPs(h), { a: 3, b: 1 });
    for (const l of [...batch, chat]) l.release();
  });

  test("CPU sets go to the placement after the runner applied its thread count, and are disjoint", async () => {
    const placed: Array<[number, number[] | null]> = [];
    const placement: CpuPlacement = {
      kind: "test",
      enforced: true,
      apply: async (pid, cpus) => void placed.push([pid, cpus ? [...cpus] : null]),
    };
    const h = harness({ a: 100, b: 100 }, TWO_CORES, { placement });
    const la = await hold(h, "a");
    const lb = await hold(h, "b");
    const pa = runner(h, "a").pid!;
    const pb = runner(h, "b").pid!;
    const last = (pid: number) => placed.filter(([p]) => p === pid).at(-1)?.[1];
    assert.deepEqual(last(pa), [0], "a keeps CPU 0");
    assert.deepEqual(last(pb), [1]);
    const ps = await h.scheduler.ps();
    assert.deepEqual(
      ps.models.map((m) => m.cpu.cpus),
      [[0], [1]],
    );
    assert.equal(ps.cpu.placement, "test");
    const applied = h.events.filter((e) => e.type === "model.cpu_applied");
    assert.ok(applied.length >= 2, "each runner confirmed its allotment");
    la.release();
    lb.release();
  });

  test("allotments decided faster than runners answer all arrive, in order: the runner ends with the last", async () => {
    const h = harness({ a: 100, b: 100 }, { ...TWO_CORES, cpuHoldMs: 0 });
    await h.scheduler.load("b");
    const la = await hold(h, "a");
    // In one tick: b busy (a shrinks to 1), b idle again (a grows back to 2), before any answer came.
    const lb = await h.scheduler.acquire("b");
    lb.release();
    await settle();
    const a = runner(h, "a");
    assert.deepEqual(
      a.allotments.map((x) => x.threads),
      [1, 2],
    );
    assert.equal(a.threads, 2);
    la.release();
  });

  test("a crashed busy runner's cores go to the others", async () => {
    const h = harness({ a: 100, b: 100 }, TWO_CORES);
    const la = await hold(h, "a");
    await hold(h, "b");
    assert.deepEqual(await threadsInPs(h), { a: 1, b: 1 });
    runner(h, "b").crash();
    await settle();
    await h.clock.advance(50);
    assert.deepEqual(await threadsInPs(h), { a: 2 });
    la.release();
  });
});
