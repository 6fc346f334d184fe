/**
 * The keep-alive policies through the scheduler, with fake runners and a fake clock: lru and gdsf keep models until
 * memory is needed and differ in what they evict; histogram falls back to the fixed keep-alive without history,
 * and with a learned periodic history unloads after a request and prewarms before the next (used, wasted, failed
 * once per window, never waiting for busy models); a request's keep_alive and pins always win.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { GdsfPolicy, HistogramPolicy, LruPolicy } from "../../src/scheduler/policies/index.js";
import { binOf, emptyHistogram, HISTOGRAM_LAYOUT } from "../../src/scheduler/usage/idle-histogram.js";
import { emptyHourly } from "../../src/scheduler/usage/time-of-day.js";
import { UsageModel } from "../../src/scheduler/usage/usage-model.js";
import type { SchedulerOptions } from "../../src/scheduler/scheduler.js";
import { Metrics } from "../../src/telemetry/metrics.js";
import { MemoryUsageRepository } from "../../src/usage-store/index.js";
import { FakeClock, settle } from "../support/fake-clock.js";
import { type FakeRunners, PrestartingRunners } from "../support/fake-runner.js";
import { harness, MiB, snapshot, use, view, type Harness } from "./harness.js";

const DAY = 86_400_000;
const K = 2000;

/** A usage model that has seen these idle gaps for each model, a week ago and since. */
async function learned(
  clock: FakeClock,
  models: Record<string, number[]>,
  loadMs: Record<string, number> = {},
): Promise<UsageModel> {
  const repo = new MemoryUsageRepository();
  await repo.save(
    Object.entries(models).map(([name, gapsMs]) => {
      const gaps = emptyHistogram();
      for (const g of gapsMs) gaps[binOf(g)]! += 1;
      return {
        model: `${name}:latest`,
        layout: HISTOGRAM_LAYOUT,
        gaps,
        hourly: emptyHourly(),
        requests: gapsMs.length,
        loadMs: loadMs[name] ?? 5,
        sizeBytes: 100 * MiB,
        firstSeen: clock.now() - 7 * DAY,
        lastArrival: null,
        updatedAt: clock.now(),
      };
    }),
  );
  return UsageModel.open(repo, clock);
}

/** Forty gaps of 10 s (within 1%). */
const every10s = Array.from({ length: 40 }, (_, i) => 9900 + 5 * i);

async function histogramHarness(
  models: Record<string, number>,
  history: Record<string, number[]>,
  budgetMib = 1000,
  options: Partial<SchedulerOptions> = {},
  runners?: FakeRunners,
  loadMs: Record<string, number> = {},
) {
  const clock = new FakeClock();
  const usage = await learned(clock, history, loadMs);
  const metrics = new Metrics();
  const policy = new HistogramPolicy(usage, { keepAliveMs: K });
  const scheduling = { keepAliveMs: K, memoryBudgetBytes: budgetMib * MiB, ...options };
  const h = harness(models, scheduling, { policy, usage, clock, metrics, ...(runners ? { runners } : {}) });
  return { h, metrics, policy };
}

async function prewarms(metrics: Metrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await metrics.prewarms.get()).values) out[String(v.labels.result)] = v.value;
  return out;
}

const prewarmLoads = (h: Harness) => h.events.filter((e) => e.type === "model.loading" && e.prewarm).length;

describe("lru and gdsf", () => {
  test("lru keeps an idle model until memory is needed; a request's keep_alive still applies", async () => {
    const h = harness({ a: 100, b: 100 }, { keepAliveMs: K }, { policy: new LruPolicy() });
    await use(h, "a");
    await h.clock.advance(DAY);
    assert.deepEqual(h.ready(), ["a:latest"], "no expiry under lru");
    await use(h, "b", { keepAliveMs: 0 });
    assert.deepEqual(h.ready(), ["a:latest"], "keep_alive 0 unloaded b at once");
  });

  test("gdsf evicts the model used least often per byte, not the least recently used", async () => {
    const h = harness({ a: 100, b: 100, c: 100 }, { memoryBudgetBytes: 250 * MiB }, { policy: new GdsfPolicy() });
    for (let i = 0; i < 5; i++) await use(h, "a");
    await h.clock.advance(1000);
    await use(h, "b");
    await use(h, "c");
    assert.deepEqual(h.ready(), ["a:latest", "c:latest"], "b (one use) went although a was used longer ago");
  });
});

describe("histogram", () => {
  test("without history it keeps the fixed keep-alive and says why in /api/ps", async () => {
    const { h } = await histogramHarness({ a: 100 }, {});
    await use(h, "a");
    await h.clock.advance(K - 10);
    const ps = await h.scheduler.ps();
    const m = ps.models[0] as unknown as Record<string, unknown>;
    assert.equal(m.keptBy, "histogram");
    assert.match(String(m.keepReason), /fixed keep-alive .*idle gaps seen/);
    assert.equal(m.loadedFor, "request");
    assert.deepEqual(h.ready(), ["a:latest"]);
    await h.clock.advance(20);
    assert.deepEqual(h.ready(), []);
  });

  test("without history it evicts the least recently used, as fixed does, whatever the models' load costs", async () => {
    const clock = new FakeClock();
    // Seen, but with too few idle gaps to trust: a is slow to load, b fast (value order would evict b).
    const usage = await learned(clock, { a: [500], b: [500] }, { a: 5000, b: 5 });
    const policy = new HistogramPolicy(usage, { keepAliveMs: K });
    const h = harness(
      { a: 100, b: 100, c: 100 },
      { keepAliveMs: K, memoryBudgetBytes: 250 * MiB },
      { policy, usage, clock },
    );
    await use(h, "a");
    await h.clock.advance(100);
    await use(h, "b");
    await use(h, "c");
    assert.deepEqual(h.ready(), ["b:latest", "c:latest"], "a, the least recently used, went");
  });

  test("a learned period: unloaded after the request, prewarmed before the next, which finds it loaded", async () => {
    const { h, metrics } = await histogramHarness({ a: 100 }, { a: every10s });
    await use(h, "a");
    await h.clock.advance(1);
    assert.deepEqual(h.ready(), [], "unloaded at once: nothing is due for almost 10 s");
    await h.clock.advance(9_000);
    assert.deepEqual(h.ready(), [], "not yet");
    await h.clock.advance(800);
    assert.deepEqual(h.ready(), ["a:latest"], "prewarmed ahead of the request");
    assert.equal(prewarmLoads(h), 1);
    assert.deepEqual(h.source.readAheads, ["a:latest"], "its files were read first");
    const ps = await h.scheduler.ps();
    assert.equal((ps.models[0] as unknown as Record<string, unknown>).loadedFor, "prewarm");
    await h.clock.advance(100);
    h.take();
    await use(h, "a");
    const started = h.take().find((e) => e.type === "request.started");
    assert.ok(started?.type === "request.started" && started.loadMs === 0, "no wait for a load: not a cold start");
    assert.deepEqual(await prewarms(metrics), { used: 1 });
  });

  test("a prewarm nobody uses is unloaded when its window closes, and not tried again in that window", async () => {
    const { h, metrics } = await histogramHarness({ a: 100 }, { a: every10s });
    await use(h, "a");
    await h.clock.advance(10_000);
    assert.deepEqual(h.ready(), ["a:latest"]);
    const until = Date.parse(String((await h.scheduler.ps()).models[0]!.expiresAt));
    await h.clock.advance(until - h.clock.now() + 1);
    assert.deepEqual(h.ready(), [], "unloaded when its window closed");
    await h.clock.advance(60_000);
    assert.equal(prewarmLoads(h), 1, "one prewarm per window");
    assert.deepEqual(await prewarms(metrics), { wasted: 1 });
  });

  test("a failed prewarm is not retried in the same window", async () => {
    const { h, metrics } = await histogramHarness({ a: 100 }, { a: every10s });
    await use(h, "a");
    h.runners.failures.push(new Error("no runner for you"));
    await h.clock.advance(9_800);
    assert.deepEqual(h.ready(), []);
    await h.clock.advance(5_000);
    assert.equal(prewarmLoads(h), 1);
    assert.deepEqual(await prewarms(metrics), { failed: 1 });
    h.take();
    await use(h, "a");
    assert.ok(
      h.take().some((e) => e.type === "model.loaded"),
      "the request itself still loads it",
    );
  });

  test("a prewarm never waits for busy models: with the budget held by a running request it only reads ahead", async () => {
    const { h } = await histogramHarness({ a: 100, b: 100 }, { a: every10s }, 150);
    await use(h, "a");
    await h.clock.advance(100);
    const busy = await h.scheduler.acquire("b");
    await h.clock.advance(9_800);
    assert.deepEqual(h.ready(), ["b:latest"]);
    assert.equal(prewarmLoads(h), 0, "no load: it would have had to wait");
    assert.deepEqual(h.source.readAheads, ["a:latest"], "its files are in the page cache for when it is asked for");
    busy.release();
  });

  test("a request's load never waits for a prewarm's runner to start; the start holds a core meanwhile", async () => {
    const { h } = await histogramHarness({ a: 100, b: 100 }, { a: every10s }, 1000, { threads: 4, cpus: [0, 1, 2, 3] });
    await use(h, "a");
    let open!: () => void;
    h.runners.gate = new Promise((resolve) => (open = resolve));
    await h.clock.advance(9_800);
    const state = (name: string) => h.scheduler.snapshot().models.find((m) => m.name === name)?.state;
    assert.equal(state("a:latest"), "starting", "the prewarm's runner is starting, held there");
    h.runners.gate = undefined;
    const lease = await h.scheduler.acquire("b");
    assert.equal(state("b:latest"), "ready", "b loaded beside it, not behind it");
    assert.equal(state("a:latest"), "starting");
    const cpu = h.scheduler.snapshot().models.find((m) => m.name === "b:latest")?.cpu;
    assert.equal(cpu?.threads, 3, "b decodes on three of the four cores while a loads");
    open();
    await settle();
    assert.deepEqual(h.ready(), ["a:latest", "b:latest"]);
    lease.release();
    await h.clock.advance(100);
    assert.equal(h.scheduler.snapshot().models.find((m) => m.name === "b:latest")?.cpu?.threads, 0);
  });

  test("a prewarm's runner starts once the busy runners gave up its core (at most 250 ms later)", async () => {
    const cores = { threads: 4, cpus: [0, 1, 2, 3] };
    for (const applies of [true, false]) {
      const { h } = await histogramHarness({ a: 100, b: 100 }, { a: every10s }, 1000, cores);
      await use(h, "a");
      const lease = await h.scheduler.acquire("b");
      await settle();
      let open!: () => void;
      h.runners.cpuGate = new Promise((resolve) => (open = resolve));
      const started = () => h.runners.started.filter((r) => r.label === "a:latest").length;
      await h.clock.advance(9_800);
      assert.equal(started(), 1, "the prewarm waits: b is mid-step with every core");
      if (applies) {
        open();
        await settle();
        assert.equal(started(), 2, "b applied its three threads: a starts");
      } else {
        await h.clock.advance(250);
        assert.equal(started(), 2, "started anyway after 250 ms");
        open();
      }
      lease.release();
    }
  });

  test("a request's keep_alive wins over the learned plan, and no prewarm undoes it", async () => {
    const { h } = await histogramHarness({ a: 100 }, { a: every10s });
    await use(h, "a", { keepAliveMs: 60_000 });
    await h.clock.advance(30_000);
    assert.deepEqual(h.ready(), ["a:latest"], "kept although the plan unloads at once");
    const m = (await h.scheduler.ps()).models[0] as unknown as Record<string, unknown>;
    assert.equal(m.keptBy, "keep_alive");
    await h.clock.advance(31_000);
    assert.deepEqual(h.ready(), []);
    await h.clock.advance(60_000);
    assert.deepEqual(h.ready(), [], "its window is open, but the request said how long to keep it");
    assert.equal(prewarmLoads(h), 0);
  });

  test("keep_alive 0 unloads at once and is not prewarmed back", async () => {
    const { h } = await histogramHarness({ a: 100 }, { a: every10s });
    await use(h, "a", { keepAliveMs: 0 });
    assert.deepEqual(h.ready(), []);
    await h.clock.advance(12_000);
    assert.equal(prewarmLoads(h), 0);
  });

  test("a pinned model stays whatever the plan says", async () => {
    const { h } = await histogramHarness({ a: 100 }, { a: every10s });
    await h.scheduler.load("a", { pinned: true });
    await use(h, "a");
    await h.clock.advance(DAY);
    assert.deepEqual(h.ready(), ["a:latest"]);
    const m = (await h.scheduler.ps()).models[0] as unknown as Record<string, unknown>;
    assert.equal(m.loadedFor, "pin");
    assert.equal(m.keptBy, "pin");
  });

  test("idle memory-seconds count loaded models serving nothing", async () => {
    const { h } = await histogramHarness({ a: 100 }, {});
    await use(h, "a");
    await h.clock.advance(1000);
    const idle = h.scheduler.idleMemoryByteSeconds().get("a:latest")!;
    assert.ok(Math.abs(idle - 100 * MiB) < 1, `${idle} byte-seconds after 1 s idle`);
  });

  /**
   * A full budget (150 MiB holds one of the two models, not one and a prestarted runner). `a` is asked for in pairs:
   * half of its idle gaps are 0.4 s, half 3 s, and it loads slowly enough (2 s) that its plan keeps it through the
   * 3 s: unloading and loading again would not be done in time. `b` is asked for every 1.5 s.
   */
  async function fullBudget(aGaps: number[], loadMs: Record<string, number> = { a: 2000 }) {
    const b = Array.from({ length: 40 }, (_, i) => 1450 + 5 * i);
    const runners = new PrestartingRunners();
    const { h } = await histogramHarness({ a: 100, b: 100 }, { a: aGaps, b }, 150, { prestart: true }, runners, loadMs);
    await settle();
    await use(h, "b");
    return { h, runners };
  }
  const pairs = [...Array.from({ length: 20 }, () => 400), ...Array.from({ length: 20 }, () => 3000)];
  const unloadsOfA = (h: Harness) =>
    h.events.flatMap((e) => (e.type === "model.unloading" && e.model === "a:latest" ? [e.reason] : []));

  test("a full budget: once an idle model's requests have paused, it goes so the next load finds a runner started", async () => {
    const { h, runners } = await fullBudget(pairs);
    await use(h, "a");
    assert.deepEqual(unloadsOfA(h), [], "a stays while a 0.4 s gap may come");
    await h.clock.advance(300);
    assert.deepEqual(unloadsOfA(h), []);
    await h.clock.advance(200);
    assert.deepEqual(unloadsOfA(h), ["evicted"], "no request for 2 s now: a went for room");
    assert.deepEqual(h.ready(), []);
    assert.ok(runners.held, "a runner is started ahead in the memory a held");
    const took = runners.took;
    await use(h, "b");
    assert.equal(runners.took, took + 1, "b's load took it");
  });

  test("a full budget: a model asked for at random (its requests never pause) is not unloaded for room", async () => {
    // Exponential idle gaps (mean 6 s): a request within a keep-alive is about 1 in 4 at any age. Asked directly,
    // 0.5 s after requests to a, b and c ended: b (every 1.5 s) is due, c (pairs) has paused, a has not.
    const clock = new FakeClock();
    const poisson = Array.from({ length: 40 }, (_, i) => -6000 * Math.log(1 - (i + 0.5) / 40));
    const b = Array.from({ length: 40 }, (_, i) => 1450 + 5 * i);
    const usage = await learned(clock, { a: poisson, b, c: pairs });
    const policy = new HistogramPolicy(usage, { keepAliveMs: K });
    const who = { tenant: "t", priority: "interactive" } as const;
    for (const m of ["a:latest", "b:latest", "c:latest"]) {
      usage.observe({ type: "request.arrived", model: m, at: clock.now(), ...who });
      usage.observe({ type: "request.finished", model: m, at: clock.now(), heldMs: 10, ...who });
    }
    await clock.advance(500);
    const idle = (name: string) => view(name, { idleSince: clock.now() - 500, lastUsed: clock.now() - 500 });
    const full = snapshot([idle("a:latest"), idle("c:latest")], {
      now: clock.now(),
      memoryBudgetBytes: 200 * MiB,
      prestart: { bytes: 70 * MiB, state: "none", startMs: 130 },
    });
    assert.deepEqual(policy.roomForPrestart([idle("a:latest")], 70 * MiB, full).unload, []);
    assert.deepEqual(policy.roomForPrestart([idle("c:latest")], 70 * MiB, full).unload, ["c:latest"]);
    const later = policy.roomForPrestart([idle("a:latest")], 70 * MiB, full).askAgainAt;
    assert.equal(later, clock.now() + 0.05 * K, "asked again a twentieth of a keep-alive later");
  });

  test("a full budget: a model whose likely cold start costs more than a runner's start saves stays", async () => {
    // As `pairs`, but 4 of the 3 s gaps are 1.5 s: 0.5 s after a request, a request within 2 s is 1 in 6, and that
    // cold start (its 2 s load, smoothed) would cost more than the 130 ms a runner's start saves.
    const some = [...Array.from({ length: 16 }, () => 400), ...Array(4).fill(1500), ...Array(20).fill(3000)];
    const { h, runners } = await fullBudget(some);
    await use(h, "a");
    for (let t = 0; t < 6; t++) await h.clock.advance(100);
    assert.deepEqual(unloadsOfA(h), []);
    assert.deepEqual(h.ready(), ["a:latest"]);
    assert.equal(runners.held, null);
  });
});
