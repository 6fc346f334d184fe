/** Fitting the simulator's service under load: it finds back the factors a run was made with. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { fitService, serviceLoss } from "../../bench/keep-alive/fit-service.js";
import type { SimModel } from "../../bench/keep-alive/sim-runtime.js";
import { simulate } from "../../bench/keep-alive/simulator.js";
import { generateTrace } from "../../bench/keep-alive/trace-generator.js";
import { mixedSpec } from "../../bench/keep-alive/trace-presets.js";
import { percentile } from "../../bench/stats.js";
import { MemoryUsageRepository } from "../../src/usage-store/index.js";

const MB = 1024 * 1024;
const NAMES = ["m0", "m1", "m2", "m3", "m4", "m5"];

test("the loss is 0 for equal runs and grows with each difference", () => {
  const a = { coldStarts: 50, ttftP50Ms: 30, ttftP99Ms: 900 };
  assert.equal(serviceLoss(a, a), 0);
  assert.ok(
    serviceLoss({ ...a, coldStarts: 60 }, a) > serviceLoss({ ...a, ttftP50Ms: 36 }, a),
    "cold starts weigh more",
  );
});

test("a run simulated 2.5x slower with 2x longer loads is fitted back to speed 0.4, loads x2", async () => {
  const trace = generateTrace(mixedSpec({ seed: 5, durationMs: 60_000, models: NAMES }));
  const models: SimModel[] = NAMES.map((name, i) => ({
    name,
    bytes: (i === 0 ? 40 : 100) * MB,
    loadMs: 300,
    promptTokensPerSecond: 3000,
    tokensPerSecond: 150,
  }));
  const options = {
    trace,
    models,
    policy: "fixed" as const,
    keepAliveMs: 5000,
    memoryBudgetBytes: 341 * MB,
    parallel: 4,
    pinned: ["m0"],
    usage: new MemoryUsageRepository(),
  };
  const slow = await simulate({ ...options, service: { speed: 0.4, load: 2 } });
  const ttft = slow.ttftMs.filter(Number.isFinite);
  const real = { coldStarts: slow.coldStarts, ttftP50Ms: percentile(ttft, 50), ttftP99Ms: percentile(ttft, 99) };
  const fit = await fitService(options, real);
  assert.deepEqual([fit.speed, fit.load], [0.4, 2]);
  assert.deepEqual(fit.simulated, real);
  assert.ok(fit.unfitted.ttftP99Ms < real.ttftP99Ms, "the solo calibration alone is too fast");
});
