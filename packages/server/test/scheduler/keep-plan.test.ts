/** The learned keep-alive's arithmetic over idle-time histograms (policies/keep-plan.ts), without a scheduler. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { bestPlan, fixedIdleMs, gapSums } from "../../src/scheduler/policies/keep-plan.js";
import { Random } from "../../bench/keep-alive/random.js";
import { binOf, emptyHistogram } from "../../src/scheduler/usage/idle-histogram.js";

function histogram(samples: number[]): number[] {
  const h = emptyHistogram();
  for (const s of samples) h[binOf(s)]! += 1;
  return h;
}

const rnd = new Random(7);
const periodic = histogram(Array.from({ length: 200 }, () => 10_000 * (1 + 0.02 * rnd.normal())));
const poisson = histogram(Array.from({ length: 200 }, () => rnd.exponential(3000)));
const bursty = histogram([
  ...Array.from({ length: 300 }, () => rnd.exponential(300)),
  ...Array.from({ length: 60 }, () => rnd.pareto(20_000, 2.5)),
]);
/** A price at which a second of idle time costs a fifth of a cold start. */
const PRICY = 0.2 / 1000;

test("periodic gaps: unloaded at once, prewarmed just before the period, kept a little past it", () => {
  const plan = bestPlan(gapSums(periodic), PRICY, 1000);
  assert.equal(plan.keepFirstMs, 0);
  assert.ok(
    plan.prewarmAtMs !== null && plan.prewarmAtMs > 8000 && plan.prewarmAtMs <= 10_000,
    String(plan.prewarmAtMs),
  );
  assert.ok(plan.keepUntilMs >= 10_000 && plan.keepUntilMs < 13_000, String(plan.keepUntilMs));
  assert.ok(plan.coldShare < 0.1, String(plan.coldShare));
  assert.ok(plan.idleMs < 0.2 * fixedIdleMs(periodic, 60_000), "a fraction of what a long keep-alive holds");
});

test("memoryless gaps: never a prewarm (keeping or unloading is all that pays), at any price", () => {
  for (const price of [1e-7, 1e-5, 1e-4, 1e-3, 1e-2]) {
    const plan = bestPlan(gapSums(poisson), price, 1000);
    assert.equal(plan.prewarmAtMs, null, `price ${price}: ${JSON.stringify(plan)}`);
  }
});

test("bursty gaps: kept through the burst, unloaded in the quiet stretch, prewarmed when the next burst may come", () => {
  const s = gapSums(bursty);
  const plans = [3e-5, 5e-5, 7e-5, 1e-4].map((price) => bestPlan(s, price, 1000));
  const split = plans.find((p) => p.prewarmAtMs !== null && p.keepFirstMs < 5000);
  assert.ok(split, `some price splits the plan: ${JSON.stringify(plans)}`);
  assert.ok(split.keepFirstMs >= 500, `kept through the burst: ${split.keepFirstMs}`);
  assert.ok(split.prewarmAtMs! > 10_000 && split.prewarmAtMs! <= 21_000, `prewarm at ${split.prewarmAtMs}`);
  assert.ok(split.keepUntilMs > split.prewarmAtMs!);
});

test("a higher price of idle time never buys more idle time", () => {
  for (const h of [periodic, poisson, bursty]) {
    const s = gapSums(h);
    let last = Infinity;
    for (let price = 1e-8; price < 1; price *= 4) {
      const idle = bestPlan(s, price, 1000).idleMs;
      assert.ok(idle <= last + 1e-9, `price ${price}: ${idle} > ${last}`);
      last = idle;
    }
  }
});

test("a prewarm is never planned in a quiet stretch shorter than the minimum", () => {
  const plan = bestPlan(gapSums(periodic), PRICY, 60_000);
  assert.equal(plan.prewarmAtMs, null, "10 s of quiet is too short to unload and reload within 60 s");
});

test("the fixed keep-alive's idle time is E[min(gap, keep-alive)]", () => {
  const h = histogram([...Array(3).fill(1000), 100_000]);
  const expected = (3 * 1000 + 5000) / 4;
  assert.ok(Math.abs(fixedIdleMs(h, 5000) - expected) / expected < 0.15, String(fixedIdleMs(h, 5000)));
});
