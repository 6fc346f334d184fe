/**
 * The usage model: idle gaps (only when nothing was in flight), hours of the day, load cost and size learned from
 * the scheduler's events; decay; the SQLite store round trip; a corrupt store refused with the model and field;
 * batches merged into a shared record (two nodes both count and read the sum); a failed write loses nothing.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { BINS, binOf, edge, percentile } from "../../src/scheduler/usage/idle-histogram.js";
import {
  addRequest,
  decayTo,
  mergeUsage,
  newUsage,
  recordArrival,
  recordEnd,
  recordLoad,
  toStored,
} from "../../src/scheduler/usage/model-usage.js";
import { hourOf, relativeRate } from "../../src/scheduler/usage/time-of-day.js";
import { UsageModel } from "../../src/scheduler/usage/usage-model.js";
import {
  MemoryUsageRepository,
  SqliteUsageRepository,
  UsageStoreCorruptError,
  type UsageRepository,
} from "../../src/usage-store/index.js";
import { FakeClock } from "../support/fake-clock.js";
import { harness, settle, use } from "./harness.js";

const DAY = 86_400_000;

/** Equal up to the decay of a few seconds against a 7-day half-life. */
function near(actual: number | null | undefined, expected: number, what = ""): void {
  assert.ok(
    actual !== null && actual !== undefined && Math.abs(actual - expected) < 1e-3,
    `${what} ${actual} != ${expected}`,
  );
}

test("histogram bins are log-spaced: every gap falls in the bin whose edges hold it", () => {
  for (const ms of [0, 5, 19.9, 20, 24, 100, 1000, 65_432, 3_600_000]) {
    const b = binOf(ms);
    assert.ok(edge(b) <= ms && (b >= BINS || ms < edge(b + 1)), `${ms} ms in bin ${b} [${edge(b)}, ${edge(b + 1)})`);
  }
  assert.equal(binOf(1e12), BINS, "beyond the last edge: the overflow bin");
  const h = new Array<number>(BINS + 1).fill(0);
  h[binOf(1000)] = 9;
  h[binOf(60_000)] = 1;
  assert.ok(percentile(h, 0.5)! >= 1000 && percentile(h, 0.5)! < 1200);
  assert.ok(percentile(h, 0.99)! >= 60_000);
});

test("an idle gap is recorded only when the model had nothing in flight; ends and hours are counted", () => {
  const u = newUsage("m:latest", 0);
  const o = { dayMs: DAY, halfLifeMs: 7 * DAY };
  recordArrival(u, 1000, o);
  assert.equal(u.gapTotal, 0, "the first request has no gap before it");
  recordArrival(u, 1100, o); // overlaps the first
  recordEnd(u, 1500);
  assert.equal(u.lastEnd, null, "one request still runs");
  recordEnd(u, 1600);
  assert.equal(u.lastEnd, 1600);
  recordArrival(u, 4600, o);
  near(u.gapTotal, 1);
  near(u.gaps[binOf(3000)], 1, "the gap from the last end (1600) to the arrival (4600)");
  near(u.requests, 3);
  near(u.hourly[hourOf(1000, DAY)], 3);
});

test("old samples decay with the half-life", () => {
  const u = newUsage("m:latest", 0);
  u.gaps[5] = 8;
  u.gapTotal = 8;
  u.requests = 4;
  decayTo(u, 2 * 7 * DAY, 7 * DAY);
  assert.equal(u.gaps[5], 2);
  assert.equal(u.gapTotal, 2);
  assert.equal(u.requests, 1);
});

test("relative rate by hour: flat when young, following the counts when not", () => {
  const hourly = new Array<number>(24).fill(0);
  assert.equal(relativeRate(hourly, 0, DAY), 1);
  hourly[hourOf(0, DAY)] = 100;
  assert.ok(relativeRate(hourly, 0, DAY) > 4);
  assert.ok(relativeRate(hourly, DAY / 2, DAY) < 0.5);
});

test("the scheduler's events teach the usage model: gaps, load time and size", async () => {
  const clock = new FakeClock();
  const usage = await UsageModel.open(new MemoryUsageRepository(), clock);
  const h = harness({ a: 100 }, {}, { usage, clock });
  await use(h, "a");
  for (let i = 0; i < 3; i++) {
    await h.clock.advance(2000);
    await use(h, "a");
  }
  const u = usage.get("a:latest")!;
  near(u.gapTotal, 3);
  near(u.gaps[binOf(2000)], 3);
  near(u.requests, 4);
  assert.equal(u.loadMs, 5, "the fake runner's load time");
  assert.equal(u.sizeBytes, 100 * 1024 * 1024);
});

const who = { model: "a:latest", tenant: "t", priority: "interactive" } as const;

/** One request of `a` from `at` to `at + ms`. */
function request(usage: UsageModel, at: number, ms = 200): void {
  usage.observe({ type: "request.arrived", ...who, at });
  usage.observe({ type: "request.finished", ...who, at: at + ms, heldMs: ms });
}

test("the usage store survives a restart (SQLite round trip) and refuses corrupt records naming them", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "llmos-usage-"));
  const file = path.join(dir, "llmos.db");
  try {
    const clock = new FakeClock();
    const repo = SqliteUsageRepository.open(file);
    const usage = await UsageModel.open(repo, clock);
    const t0 = clock.now();
    request(usage, t0);
    usage.observe({ type: "request.arrived", ...who, at: t0 + 5200 });
    await usage.close();
    await repo.close();

    const again = SqliteUsageRepository.open(file);
    const back = (await UsageModel.open(again, clock)).get("a:latest")!;
    near(back.gapTotal, 1);
    near(back.gaps[binOf(5000)], 1);
    near(back.requests, 2);
    await again.close();

    const db = new Database(file);
    db.prepare("UPDATE model_usage SET gaps = ? WHERE model = ?").run("[1,2", "a:latest");
    db.close();
    const broken = SqliteUsageRepository.open(file);
    await assert.rejects(UsageModel.open(broken, clock), (e: unknown) => {
      assert.ok(e instanceof UsageStoreCorruptError);
      assert.match(e.message, /"a:latest".*gaps/);
      return true;
    });
    await broken.close();

    const db2 = new Database(file);
    db2.prepare("UPDATE model_usage SET gaps = ?, layout = 99 WHERE model = ?").run(JSON.stringify([0]), "a:latest");
    db2.close();
    const wrong = SqliteUsageRepository.open(file);
    await assert.rejects(UsageModel.open(wrong, clock), /unknown histogram layout 99/);
    await wrong.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("writes are batched: nothing is written before the flush delay, everything after", async () => {
  const clock = new FakeClock();
  const repo = new MemoryUsageRepository();
  const usage = await UsageModel.open(repo, clock, { flushDelayMs: 2000 });
  usage.observe({ type: "request.arrived", model: "a:latest", at: clock.now(), tenant: "t", priority: "interactive" });
  assert.equal((await repo.loadAll()).length, 0);
  await clock.advance(2000);
  await settle();
  assert.equal((await repo.loadAll()).length, 1);
});

test("merging a batch into a stored record: both decayed to the later time, weights add, times widen", () => {
  const o = { dayMs: DAY, halfLifeMs: 7 * DAY };
  const stored = newUsage("a:latest", 0);
  addRequest(stored, 1000, binOf(3000), o);
  recordLoad(stored, 100, 50);
  const batch = newUsage("a:latest", 7 * DAY);
  addRequest(batch, 7 * DAY + 1000, binOf(3000), o);
  addRequest(batch, 7 * DAY + 2000, null, o);
  recordLoad(batch, 200, 60);
  const merged = mergeUsage(toStored(stored), toStored(batch), o.halfLifeMs);
  assert.equal(merged.updatedAt, 7 * DAY + 2000);
  near(merged.gaps[binOf(3000)], 0.5 + 1, "the stored gap is a half-life old");
  near(merged.requests, 0.5 + 2);
  near(merged.loadMs, 100 + 0.3 * (200 - 100), "smoothed toward the batch's load time");
  assert.equal(merged.sizeBytes, 60, "the newest size");
  assert.equal(merged.firstSeen, 0);
  assert.equal(merged.lastArrival, 7 * DAY + 2000);
  assert.deepEqual(mergeUsage(undefined, toStored(batch), o.halfLifeMs), toStored(batch));
  assert.throws(
    () => mergeUsage({ ...toStored(stored), layout: 99 }, toStored(batch), o.halfLifeMs),
    UsageStoreCorruptError,
  );
});

test("two nodes sharing one store: each adds its samples, both count, each reads the sum", async () => {
  const clock = new FakeClock();
  const shared = new MemoryUsageRepository();
  const a = await UsageModel.open(shared, clock, { flushDelayMs: null, refreshMs: 10_000 });
  const b = await UsageModel.open(shared, clock, { flushDelayMs: null, refreshMs: 10_000 });
  const t0 = clock.now();
  // Node a: three requests 3 s apart (two idle gaps); node b: two requests 60 s apart (one gap).
  for (const at of [t0, t0 + 3200, t0 + 6400]) request(a, at);
  for (const at of [t0, t0 + 60_200]) request(b, at);
  await a.flush();
  await b.flush();
  const stored = (await shared.loadAll())[0]!;
  near(stored.requests, 5);
  near(stored.gaps[binOf(3000)], 2);
  near(stored.gaps[binOf(60_000)], 1);
  // b wrote last and read back the sum; a sees it at its next refresh.
  near(b.get("a:latest")!.requests, 5);
  near(a.get("a:latest")!.requests, 3);
  await clock.advance(10_000);
  await settle();
  near(a.get("a:latest")!.requests, 5, "refreshed from the store");
  near(a.gapWeight("a:latest", clock.now()), 3);
  assert.equal(a.get("a:latest")!.lastEnd, t0 + 6600, "this node's own idle clock is kept");
  // A third node that never served the model reads the cluster's record at its start.
  const c = await UsageModel.open(shared, clock);
  near(c.get("a:latest")!.requests, 5);
  assert.equal(c.get("a:latest")!.lastEnd, null);
  await Promise.all([a.close(), b.close(), c.close()]);
});

test("samples learned while a write runs, or when it fails, are written by the next one", async () => {
  const clock = new FakeClock();
  const inner = new MemoryUsageRepository();
  let fail = true;
  let open = () => {};
  const gate = new Promise<void>((resolve) => (open = resolve));
  const errors: unknown[] = [];
  const flaky: UsageRepository = {
    loadAll: () => inner.loadAll(),
    save: (r) => inner.save(r),
    close: () => inner.close(),
    add: async (batches, merge) => {
      if (fail) {
        fail = false;
        throw new Error("the cluster database is unreachable");
      }
      await gate;
      return inner.add(batches, merge);
    },
  };
  const usage = await UsageModel.open(flaky, clock, { flushDelayMs: null }, (e) => errors.push(e));
  request(usage, clock.now());
  await usage.flush();
  assert.equal(errors.length, 1, "the failure is reported");
  assert.equal((await inner.loadAll()).length, 0);
  near(usage.get("a:latest")!.requests, 1, "the view keeps the sample");
  request(usage, clock.now() + 5000);
  const writing = usage.flush();
  await settle();
  request(usage, clock.now() + 10_000); // arrives while the write waits for the database
  open();
  await writing;
  near((await inner.loadAll())[0]!.requests, 2, "the failed batch and the next one");
  near(usage.get("a:latest")!.requests, 3, "stored plus the one not written yet");
  await usage.close();
  near((await inner.loadAll())[0]!.requests, 3);
});
