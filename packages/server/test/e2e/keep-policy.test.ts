/**
 * Learned keep-alive with real runners (stories260K): the usage model learns from requests and survives a restart;
 * a corrupt usage store falls back to the fixed keep-alive with a warning; a learned period prewarms the model
 * before its request, which then finds it loaded; a request's keep_alive wins; /api/ps and /metrics say why a model
 * is loaded and until when; the benchmark's replayer drives a real daemon.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import Database from "better-sqlite3";
import { replay } from "../../bench/keep-alive/replayer.js";
import { parseTrace } from "../../bench/keep-alive/trace-format.js";
import { homePaths } from "../../src/config/config.js";
import type { SchedulerEvent } from "../../src/scheduler/events.js";
import { binOf, emptyHistogram, HISTOGRAM_LAYOUT } from "../../src/scheduler/usage/idle-histogram.js";
import { emptyHourly } from "../../src/scheduler/usage/time-of-day.js";
import { SqliteUsageRepository } from "../../src/usage-store/index.js";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";
import { TINY_RANDOM } from "../support/paths.js";

const MODEL = "stories:latest";
const MiB = 1024 * 1024;
const homes: string[] = [];
after(() => {
  for (const h of homes) rmSync(h, { recursive: true, force: true });
});

function freshHome(): string {
  const home = mkdtempSync(path.join(os.tmpdir(), "llmos-keep-"));
  homes.push(home);
  return home;
}

async function complete(d: TestDaemon, extra: object = {}) {
  const r = await api(d, "POST", "/v1/completions", { model: "stories", prompt: "Once", max_tokens: 2, ...extra });
  assert.equal(r.status, 200, r.text);
}

async function psModel(d: TestDaemon): Promise<Record<string, any> | undefined> {
  return (await api(d, "GET", "/api/ps")).json.models.find((m: any) => m.name === MODEL);
}

/** Stores a week-old usage history for `model` (stories by default): `gapsMs` idle gaps, the load time given. */
async function seedHistory(home: string, gapsMs: number[], loadMs: number, model = MODEL): Promise<void> {
  const repo = SqliteUsageRepository.open(homePaths(home).database);
  const gaps = emptyHistogram();
  for (const g of gapsMs) gaps[binOf(g)]! += 1;
  await repo.save([
    {
      model,
      layout: HISTOGRAM_LAYOUT,
      gaps,
      hourly: emptyHourly(),
      requests: gapsMs.length,
      loadMs,
      sizeBytes: 80 * 1024 * 1024,
      firstSeen: Date.now() - 7 * 86_400_000,
      lastArrival: null,
      updatedAt: Date.now(),
    },
  ]);
  await repo.close();
}

function until(d: TestDaemon, what: (e: SchedulerEvent) => boolean, ms = 30_000): Promise<SchedulerEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error("timed out waiting for a scheduler event"));
    }, ms);
    const off = d.scheduler.subscribe((e) => {
      if (!what(e)) return;
      clearTimeout(timer);
      off();
      resolve(e);
    });
  });
}

async function metric(d: TestDaemon, line: RegExp): Promise<number> {
  const text = (await api(d, "GET", "/metrics")).text;
  const m = line.exec(text);
  return m ? Number(m[1]) : 0;
}

describe("learned keep-alive with real runners", () => {
  test("the usage model learns from requests and survives a restart", async () => {
    const home = freshHome();
    // A compressed day (24 s): the histogram is trusted once it is an "hour" (1 s) old with 12 idle gaps.
    const config = { home, keepPolicy: "histogram" as const, usageDayMs: 24_000 };
    const a = await startTestDaemon(config);
    try {
      for (let i = 0; i < 14; i++) {
        await complete(a);
        await new Promise((r) => setTimeout(r, 120));
      }
    } finally {
      await a.stop();
    }
    const repo = SqliteUsageRepository.open(homePaths(home).database);
    const stored = (await repo.loadAll()).find((r) => r.model === MODEL);
    await repo.close();
    assert.ok(stored, "written to the daemon's database");
    const gaps = stored.gaps.reduce((x, y) => x + y, 0);
    assert.ok(gaps >= 12.9 && gaps <= 13.1, `13 idle gaps stored (${gaps})`);
    assert.ok(stored.loadMs !== null && stored.loadMs > 0 && stored.sizeBytes! > 0);

    const b = await startTestDaemon(config, { importStories: false });
    try {
      const r = await api(b, "POST", "/api/models/stories/load", {});
      assert.equal(r.status, 200, r.text);
      const m = await psModel(b);
      assert.equal(m?.keptBy, "histogram");
      assert.match(
        String(m?.keepReason),
        /^learned from 13 idle gaps/,
        "the restarted daemon plans from the stored history",
      );
      assert.equal((await api(b, "GET", "/api/ps")).json.policy.name, "histogram");
    } finally {
      await b.stop();
    }
  });

  test("a corrupt usage store falls back to the fixed keep-alive, with a warning, and serves on", async () => {
    const home = freshHome();
    await seedHistory(home, [1000, 1000], 100);
    const db = new Database(homePaths(home).database);
    db.prepare("UPDATE model_usage SET hourly = 'garbage'").run();
    db.close();
    const d = await startTestDaemon({ home, keepPolicy: "histogram" });
    try {
      const policy = (await api(d, "GET", "/api/ps")).json.policy;
      assert.equal(policy.name, "fixed");
      assert.equal(policy.configured, "histogram");
      assert.match(policy.warning, /usage store cannot be read .*hourly is not JSON.*fixed keep-alive/);
      assert.ok(d.logs.some((l) => l.includes('"level":40') && l.includes("usage store cannot be read")));
      assert.equal(await metric(d, /^llmos_keep_policy_info\{policy="fixed",configured="histogram"\} (\S+)$/m), 1);
      await complete(d);
      const m = await psModel(d);
      assert.equal(m?.keptBy, "fixed");
      assert.match(String(m?.keepReason), /^fixed keep-alive/);
    } finally {
      await d.stop();
    }
    const repo = SqliteUsageRepository.open(homePaths(home).database);
    await assert.rejects(repo.loadAll(), /hourly is not JSON/, "the store is left as it was, for inspection");
    await repo.close();
  });

  /**
   * A daemon whose usage store says stories is asked for about every 4 s (40 idle gaps), with a fixed keep-alive of
   * 1 s as the reference: holding 4 s after each request would cost too much, so the plan unloads and prewarms.
   */
  async function startWithLearnedPeriod(): Promise<TestDaemon> {
    const home = freshHome();
    await seedHistory(
      home,
      Array.from({ length: 40 }, (_, i) => 3950 + 5 * i),
      150,
    );
    return startTestDaemon({ home, keepPolicy: "histogram", keepAliveMs: 1000 });
  }

  test("a learned period: unloaded after a request, prewarmed before the next, which is warm", async () => {
    const d = await startWithLearnedPeriod();
    try {
      const unloaded = until(d, (e) => e.type === "model.unloaded" && e.model === MODEL);
      await complete(d);
      await unloaded;
      assert.equal(await psModel(d), undefined, "unloaded at once: nothing is due for 4 s");
      await until(d, (e) => e.type === "model.loading" && e.model === MODEL && e.prewarm === true);
      await until(d, (e) => e.type === "model.loaded" && e.model === MODEL);
      const m = await psModel(d);
      assert.equal(m?.loadedFor, "prewarm");
      assert.match(String(m?.keepReason), /prewarmed/);
      assert.ok(Date.parse(m?.expiresAt) > Date.now(), "until the end of its window");
      const cold = await metric(d, /^llmos_cold_starts_total\{model="stories:latest"\} (\S+)$/m);
      const started = until(d, (e) => e.type === "request.started" && e.model === MODEL);
      await complete(d);
      const s = await started;
      assert.ok(s.type === "request.started" && s.loadMs === 0, "it found the model loaded");
      assert.equal(await metric(d, /^llmos_cold_starts_total\{model="stories:latest"\} (\S+)$/m), cold);
      assert.equal(await metric(d, /^llmos_prewarm_total\{result="used"\} (\S+)$/m), 1);
      assert.ok((await metric(d, /^llmos_idle_memory_byte_seconds_total\{model="stories:latest"\} (\S+)$/m)) > 0);
    } finally {
      await d.stop();
    }
  });

  test("a request's keep_alive wins over the learned plan", async () => {
    const d = await startWithLearnedPeriod();
    try {
      await complete(d, { keep_alive: "30s" });
      await new Promise((r) => setTimeout(r, 300));
      const m = await psModel(d);
      assert.equal(m?.keptBy, "keep_alive");
      assert.equal(m?.loadedFor, "request");
      assert.ok(Math.abs(Date.parse(m?.expiresAt) - (Date.now() + 30_000)) < 5_000, m?.expiresAt);
    } finally {
      await d.stop();
    }
  });

  test("the replayer sends a trace to a real daemon in time and measures each request", async () => {
    const d = await startTestDaemon({ keepPolicy: "fixed" });
    try {
      const header = JSON.stringify({ type: "llmos-trace", version: 1, spec: { models: [{ name: "stories" }] } });
      const lines = [0, 200, 400, 1500, 1600].map((t) =>
        JSON.stringify({ t, model: "stories", promptTokens: 6, maxTokens: 4 }),
      );
      const trace = parseTrace([header, ...lines].join("\n"), new Set(["stories"]));
      const started = performance.now();
      const r = await replay({ trace, url: d.url });
      assert.equal(r.failed, 0, r.errors.join("; "));
      assert.ok(r.ttftMs.every((t) => Number.isFinite(t) && t > 0));
      assert.ok(performance.now() - started >= 1500, "sent at their times");
    } finally {
      await d.stop();
    }
  });

  test("a full budget: histogram unloads an idle model whose requests have paused, and the next load finds a runner started", async () => {
    // What each model reserves, to size a budget that holds one of them and not one and a prestarted runner
    // (16 MiB to spare: a runner measured later may count a little more overhead).
    const probe = await startTestDaemon({ prestart: false });
    let budget = 0;
    try {
      await probe.store.importFile(TINY_RANDOM, "tiny");
      for (const model of ["stories", "tiny"]) {
        await complete(probe, { model });
        budget = Math.max(budget, probe.scheduler.reservedBytes());
        assert.equal((await api(probe, "POST", `/api/models/${model}/unload`, {})).status, 200);
      }
    } finally {
      await probe.stop();
    }
    const home = freshHome();
    // stories is asked for in pairs: half its idle gaps are 0.4 s, half 3 s, and its recorded load time (2 s) keeps
    // its plan from unloading it in between. tiny is asked for every 1.5 s.
    await seedHistory(home, [...Array(20).fill(400), ...Array(20).fill(3000)], 2000);
    await seedHistory(
      home,
      Array.from({ length: 40 }, (_, i) => 1450 + 5 * i),
      150,
      "tiny:latest",
    );
    const d = await startTestDaemon({
      home,
      keepPolicy: "histogram",
      keepAliveMs: 2000,
      memoryBudgetBytes: budget + 16 * MiB,
    });
    try {
      await d.store.importFile(TINY_RANDOM, "tiny");
      const events: SchedulerEvent[] = [];
      d.scheduler.subscribe((e) => events.push(e));
      await complete(d, { model: "tiny" });
      const room = until(d, (e) => e.type === "model.unloading" && e.model === MODEL);
      await complete(d);
      const unloading = await room;
      assert.ok(unloading.type === "model.unloading" && unloading.reason === "evicted", JSON.stringify(unloading));
      const since = events.findIndex((e) => e.type === "model.loaded" && e.model === MODEL);
      const after = events.slice(since + 1, events.indexOf(unloading));
      assert.ok(!after.some((e) => e.type === "model.loading"), "no load asked for its memory");
      const end = Date.now() + 30_000;
      while (d.scheduler.snapshot().prestart?.state !== "ready" && Date.now() < end)
        await new Promise((r) => setTimeout(r, 20));
      assert.equal(d.scheduler.snapshot().prestart?.state, "ready", "a runner started in the memory stories held");
      const next = until(d, (e) => e.type === "model.loaded" && e.model === "tiny:latest");
      await complete(d, { model: "tiny" });
      const loaded = await next;
      assert.ok(loaded.type === "model.loaded" && loaded.prestarted === true, JSON.stringify(loaded));
    } finally {
      await d.stop();
    }
  });
});
