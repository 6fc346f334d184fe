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
import { harness, MiB, use, type Harness } from "./harness.js";

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
   * A full budget (150 MiB holds one of the two models, not one and a prestarted runner): `a` is bursty (30% of its
   * idle gaps are 0.4 s, the rest a minute), `b` is asked for every 1.5 s.
   */
  async function fullBudget(shortShare: number, loadMs: Record<string, number> = {}) {
    const short = Math.round(40 * shortShare);
    const a = [...Array.from({ length: short }, () => 400), ...Array.from({ length: 40 - short }, () => 60_000)];
    const b = Array.from({ length: 40 }, (_, i) => 1450 + 5 * i);
    const runners = new PrestartingRunners();
    const { h } = await histogramHarness({ a: 100, b: 100 }, { a, b }, 150, { prestart: true }, runners, loadMs);
    await settle();
    await use(h, "b");
    return { h, runners };
  }
  const unloads = (h: Harness) =>
    h.events.flatMap((e) => (e.type === "model.unloading" ? [`${e.model} ${e.reason}`] : []));

  test("a full budget: the idle model least likely to be asked for goes, so the next load finds a runner started", async () => {
    const { h, runners } = await fullBudget(0.3);
    await use(h, "a");
    assert.deepEqual(unloads(h), ["b:latest evicted", "a:latest evicted"], "a's load evicted b; then a went for room");
    assert.deepEqual(h.ready(), []);
    assert.ok(runners.held, "a runner is started ahead in the memory a held");
    const took = runners.took;
    await use(h, "b");
    assert.equal(runners.took, took + 1, "b's load took it");
  });

  test("a full budget: an idle model likelier to be asked for than the others stays, with no runner started", async () => {
    const { h, runners } = await fullBudget(0.8);
    await use(h, "a");
    await h.clock.advance(100);
    assert.deepEqual(unloads(h), ["b:latest evicted"]);
    assert.deepEqual(h.ready(), ["a:latest"]);
    assert.equal(runners.held, null);
  });

  test("a full budget: a model that loads slowly stays (its cold start would cost more than a runner's start saves)", async () => {
    const { h, runners } = await fullBudget(0.3, { a: 5000 });
    await use(h, "a");
    await h.clock.advance(100);
    assert.deepEqual(unloads(h), ["b:latest evicted"]);
    assert.deepEqual(h.ready(), ["a:latest"]);
    assert.equal(runners.held, null);
  });
});
