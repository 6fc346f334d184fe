/**
 * The benchmark's trace tools: generator (reproducible, true to its parameters), parser (refuses bad lines naming
 * them), and the simulator, which runs the daemon's own scheduler on a simulated clock.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { simulate } from "../../bench/keep-alive/simulator.js";
import { ViolationChecker } from "../../bench/keep-alive/violations.js";
import type { SimModel } from "../../bench/keep-alive/sim-runtime.js";
import { parseTrace, serializeTrace, TraceError, type Trace } from "../../bench/keep-alive/trace-format.js";
import { generateTrace } from "../../bench/keep-alive/trace-generator.js";
import { mixedSpec, poissonSpec } from "../../bench/keep-alive/trace-presets.js";
import type { TraceSpec } from "../../bench/keep-alive/trace-spec.js";
import { validateTrace } from "../../bench/keep-alive/trace-validator.js";

const NAMES = ["m0", "m1", "m2", "m3", "m4", "m5"];
const MB = 1e6;

describe("trace generator and validator", () => {
  test("the same seed gives the same trace, byte for byte; another seed another", () => {
    const spec = mixedSpec({ seed: 7, durationMs: 120_000, models: NAMES });
    const a = serializeTrace(generateTrace(spec));
    assert.equal(serializeTrace(generateTrace(spec)), a);
    assert.notEqual(serializeTrace(generateTrace({ ...spec, seed: 8 })), a);
  });

  test("every parameter of a long mixed and a long Poisson trace re-measures within 10%", () => {
    for (const make of [mixedSpec, poissonSpec]) {
      const trace = generateTrace(make({ seed: 3, durationMs: 100 * 180_000, models: NAMES, dayMs: 180_000 }));
      const rows = validateTrace(trace);
      const bad = rows.filter((p) => !p.ok);
      assert.deepEqual(bad, [], `${make.name}: ${JSON.stringify(bad)}`);
      assert.ok(rows.length >= (make === mixedSpec ? 15 : 8), `${rows.length} parameters checked`);
    }
  });

  test("the validator notices a trace that is not what its header says", () => {
    const trace = generateTrace(mixedSpec({ seed: 3, durationMs: 20 * 180_000, models: NAMES, dayMs: 180_000 }));
    const lying: Trace = { ...trace, spec: { ...trace.spec, zipf: 1.6, requestsPerSecond: 3 } };
    const failed = validateTrace(lying)
      .filter((p) => !p.ok)
      .map((p) => p.parameter);
    assert.ok(failed.includes("zipf exponent") && failed.includes("requests per second"), failed.join(", "));
  });

  test("impossible specs are refused before generating", () => {
    const spec = mixedSpec({ seed: 1, durationMs: 60_000, models: NAMES });
    const tooLong: TraceSpec = {
      ...spec,
      models: [{ name: "x", pattern: { kind: "bursty", burstSize: 50, inBurstGapMs: 5000, paretoAlpha: 2 } }],
    };
    assert.throws(() => generateTrace(tooLong), /bursts too long/);
    assert.throws(() => generateTrace({ ...spec, diurnalAmplitude: 2 }), /diurnalAmplitude/);
  });
});

describe("trace parser", () => {
  const header = JSON.stringify({ type: "llmos-trace", version: 1, spec: { models: [{ name: "a" }, { name: "b" }] } });
  const line = (o: object) => JSON.stringify({ promptTokens: 4, maxTokens: 2, ...o });
  const refuses = (lines: string[], n: number, what: RegExp, known?: Set<string>) =>
    assert.throws(
      () => parseTrace(lines.join("\n"), known),
      (e: unknown) => e instanceof TraceError && e.line === n && what.test(e.message),
    );

  test("a good trace reads back", () => {
    const t = parseTrace([header, line({ t: 0, model: "a" }), line({ t: 5, model: "b", keepAliveMs: 100 })].join("\n"));
    assert.equal(t.requests.length, 2);
    assert.equal(t.requests[1]!.keepAliveMs, 100);
  });

  test("an unknown model, unordered times and malformed lines are refused, naming the line", () => {
    refuses([header, line({ t: 0, model: "a" }), line({ t: 1, model: "zzz" })], 3, /unknown model "zzz"/);
    refuses([header, line({ t: 10, model: "a" }), line({ t: 9, model: "a" })], 3, /earlier than the line before/);
    refuses([header, line({ t: 0, model: "a" }), "{not json"], 3, /not JSON/);
    refuses([header, "[1,2]"], 2, /not a JSON object/);
    refuses([header, JSON.stringify({ t: 0, model: "a", promptTokens: 0, maxTokens: 2 })], 2, /promptTokens/);
    refuses([header, line({ t: -1, model: "a" })], 2, /non-negative/);
    refuses([header, line({ t: 0, model: "a", extra: 1 })], 2, /unknown field "extra"/);
    refuses([header, "", line({ t: 0, model: "a" })], 2, /empty line/);
    refuses(['{"type":"other"}'], 1, /not an llmos trace header/);
    refuses([header, line({ t: 0, model: "a" })], 1, /unknown model "b" in the header/, new Set(["a"]));
  });
});

describe("simulator", () => {
  const model: SimModel = {
    name: "a",
    bytes: 100 * MB,
    loadMs: 300,
    promptTokensPerSecond: 1000,
    tokensPerSecond: 100,
  };
  const spec = (durationMs: number): TraceSpec => ({
    ...poissonSpec({ seed: 1, durationMs, models: NAMES }),
    models: [{ name: "a", pattern: { kind: "poisson" } }],
  });
  const every = (gapMs: number, n: number, extra: object = {}): Trace => ({
    spec: spec(gapMs * n + 1000),
    requests: Array.from({ length: n }, (_, i) => ({
      t: i * gapMs,
      model: "a",
      promptTokens: 10,
      maxTokens: 11,
      ...extra,
    })),
  });
  const run = (trace: Trace, policy: "fixed" | "lru" | "histogram", o: object = {}) =>
    simulate({ trace, models: [model], policy, keepAliveMs: 5000, memoryBudgetBytes: 1000 * MB, parallel: 4, ...o });

  test("the fixed keep-alive, simulated: gaps within it are warm, gaps beyond it cold", async () => {
    const warm = await run(every(2000, 10), "fixed");
    assert.equal(warm.coldStarts, 1, "only the first request");
    assert.ok(Math.abs(warm.ttftMs[0]! - 310) < 1, `load 300 ms + 10 prompt tokens at 1000/s: ${warm.ttftMs[0]}`);
    assert.ok(Math.abs(warm.ttftMs[1]! - 10) < 1);
    const cold = await run(every(9000, 10), "fixed");
    assert.equal(cold.coldStarts, 10, "every request: each gap outlasts the 5 s keep-alive");
    const cache = await run(every(9000, 10), "lru");
    assert.equal(cache.coldStarts, 1, "lru keeps it: memory is not needed");
    // Idle memory: 8 s of 10 gaps of 9 s under lru (request 1 s) vs 5 s under fixed.
    assert.ok(cache.idleByteSeconds > 1.5 * cold.idleByteSeconds);
  });

  test("the same inputs give the same counts (no wall clock inside)", async () => {
    const trace = generateTrace(mixedSpec({ seed: 2, durationMs: 120_000, models: NAMES }));
    const models = NAMES.map((name) => ({ ...model, name }));
    const o = { memoryBudgetBytes: 350 * MB, pinned: ["m0"] };
    const a = await simulate({ trace, models, policy: "histogram", keepAliveMs: 5000, parallel: 4, ...o });
    const b = await simulate({ trace, models, policy: "histogram", keepAliveMs: 5000, parallel: 4, ...o });
    assert.deepEqual(
      [a.coldStarts, a.loads, a.evictions, a.idleByteSeconds, a.ttftMs],
      [b.coldStarts, b.loads, b.evictions, b.idleByteSeconds, b.ttftMs],
    );
    assert.deepEqual(a.violations, [], "the pinned model stays and keep-alives are kept");
    assert.equal(a.failed, 0);
    assert.ok(!a.coldByModel["m0:latest"], "the pinned model is never cold");
  });

  test("a request's keep_alive is kept by the policies (checked from the scheduler's events)", async () => {
    for (const policy of ["fixed", "lru", "histogram"] as const) {
      const r = await run(every(9000, 6, { keepAliveMs: 9500 }), policy);
      assert.deepEqual(r.violations, [], policy);
      assert.equal(r.coldStarts, 1, `${policy}: a 9.5 s keep_alive covers each 9 s gap`);
      const short = await run(every(9000, 6, { keepAliveMs: 3000 }), policy);
      assert.deepEqual(short.violations, [], policy);
      assert.equal(short.coldStarts, 6, `${policy}: a 3 s keep_alive does not, even under lru`);
    }
  });
});

describe("violation checker", () => {
  const who = { tenant: "t", priority: "interactive" } as const;
  test("it sees a pinned model unloaded and a keep-alive cut short, and nothing else", () => {
    const c = new ViolationChecker(["p:latest"]);
    c.expectKeepAlive("a:latest", 10_000);
    c.observe({ type: "request.arrived", model: "a:latest", at: 0, ...who });
    c.observe({ type: "request.finished", model: "a:latest", at: 100, heldMs: 100, ...who });
    c.observe({ type: "model.unloading", model: "a:latest", at: 5_000, reason: "evicted" });
    assert.deepEqual(c.violations, [], "memory pressure may evict it");
    c.observe({ type: "model.unloading", model: "a:latest", at: 6_000, reason: "expired" });
    c.observe({ type: "model.unloading", model: "p:latest", at: 7_000, reason: "evicted" });
    c.observe({ type: "model.unloading", model: "p:latest", at: 8_000, reason: "shutdown" });
    assert.equal(c.violations.length, 2, c.violations.join("; "));
    assert.match(c.violations[0]!, /a:latest expired 4100 ms before its keep_alive/);
    assert.match(c.violations[1]!, /pinned p:latest unloaded \(evicted\)/);
  });
});
