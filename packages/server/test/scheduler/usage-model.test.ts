/**
 * The usage model: idle gaps (only when nothing was in flight), hours of the day, load cost and size learned from
 * the scheduler's events; decay; the SQLite store round trip; a corrupt store refused with the model and field.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { BINS, binOf, edge, percentile } from "../../src/scheduler/usage/idle-histogram.js";
import { decayTo, newUsage, recordArrival, recordEnd } from "../../src/scheduler/usage/model-usage.js";
import { hourOf, relativeRate } from "../../src/scheduler/usage/time-of-day.js";
import { UsageModel } from "../../src/scheduler/usage/usage-model.js";
import { MemoryUsageRepository, SqliteUsageRepository, UsageStoreCorruptError } from "../../src/usage-store/index.js";
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
  const usage = UsageModel.open(new MemoryUsageRepository(), clock);
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

test("the usage store survives a restart (SQLite round trip) and refuses corrupt records naming them", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "llmos-usage-"));
  const file = path.join(dir, "llmos.db");
  try {
    const clock = new FakeClock();
    const repo = SqliteUsageRepository.open(file);
    const usage = UsageModel.open(repo, clock);
    const t0 = clock.now();
    const who = { model: "a:latest", tenant: "t", priority: "interactive" } as const;
    usage.observe({ type: "request.arrived", ...who, at: t0 });
    usage.observe({ type: "request.finished", ...who, at: t0 + 200, heldMs: 200 });
    usage.observe({ type: "request.arrived", ...who, at: t0 + 5200 });
    usage.close();
    repo.close();

    const again = SqliteUsageRepository.open(file);
    const back = UsageModel.open(again, clock).get("a:latest")!;
    near(back.gapTotal, 1);
    near(back.gaps[binOf(5000)], 1);
    near(back.requests, 2);
    again.close();

    const db = new Database(file);
    db.prepare("UPDATE model_usage SET gaps = ? WHERE model = ?").run("[1,2", "a:latest");
    db.close();
    const broken = SqliteUsageRepository.open(file);
    assert.throws(
      () => UsageModel.open(broken, clock),
      (e: unknown) => {
        assert.ok(e instanceof UsageStoreCorruptError);
        assert.match(e.message, /"a:latest".*gaps/);
        return true;
      },
    );
    broken.close();

    const db2 = new Database(file);
    db2.prepare("UPDATE model_usage SET gaps = ?, layout = 99 WHERE model = ?").run(JSON.stringify([0]), "a:latest");
    db2.close();
    const wrong = SqliteUsageRepository.open(file);
    assert.throws(() => UsageModel.open(wrong, clock), /unknown histogram layout 99/);
    wrong.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("writes are batched: nothing is written before the flush delay, everything after", async () => {
  const clock = new FakeClock();
  const repo = new MemoryUsageRepository();
  const usage = UsageModel.open(repo, clock, { flushDelayMs: 2000 });
  usage.observe({ type: "request.arrived", model: "a:latest", at: clock.now(), tenant: "t", priority: "interactive" });
  assert.equal(repo.loadAll().length, 0);
  await clock.advance(2000);
  await settle();
  assert.equal(repo.loadAll().length, 1);
});
