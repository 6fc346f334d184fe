/** The simulator's shared processor: jobs that overlap take longer, by exactly what processor sharing says. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { SimClock } from "../../bench/keep-alive/sim-clock.js";
import { SharedCpu } from "../../bench/keep-alive/sim-cpu.js";

const T0 = Date.UTC(2026, 0, 1);

async function runJobs(parallelism: number, jobs: Array<{ at: number; firstMs: number; totalMs: number }>) {
  const clock = new SimClock(T0);
  const cpu = new SharedCpu(clock, parallelism);
  const out = jobs.map(() => ({ first: NaN, done: NaN }));
  jobs.forEach((j, i) =>
    clock.setTimer(
      () =>
        cpu.start({
          firstMs: j.firstMs,
          totalMs: j.totalMs,
          onFirst: () => (out[i]!.first = clock.now() - T0),
          onDone: () => (out[i]!.done = clock.now() - T0),
        }),
      j.at,
    ),
  );
  await clock.run();
  return out;
}

test("a job alone takes its solo time; its milestone comes when its first part is done", async () => {
  const [a] = await runJobs(1.5, [{ at: 0, firstMs: 40, totalMs: 100 }]);
  assert.deepEqual(a, { first: 40, done: 100 });
});

test("two overlapping jobs share the machine: 1.5 jobs' worth of work at once, split equally", async () => {
  // Both run from 0 at 0.75 each: b (60 ms of work) ends at 80; then a alone: 100 - 60 = 40 ms left, ends at 120.
  const [a, b] = await runJobs(1.5, [
    { at: 0, firstMs: 30, totalMs: 100 },
    { at: 0, firstMs: 0, totalMs: 60 },
  ]);
  assert.ok(Math.abs(a!.first - 40) < 0.01, `a's first token at 40 ms: ${a!.first}`);
  assert.ok(Math.abs(b!.done - 80) < 0.01, `b ends at 80 ms: ${b!.done}`);
  assert.ok(Math.abs(a!.done - 120) < 0.01, `a ends at 120 ms: ${a!.done}`);
});

test("with parallelism 1 the total work is conserved: three 10 ms jobs end by 30 ms", async () => {
  const done = (
    await runJobs(
      1,
      [0, 0, 0].map((at) => ({ at, firstMs: 0, totalMs: 10 })),
    )
  ).map((j) => j.done);
  assert.ok(
    done.every((d) => Math.abs(d - 30) < 0.01),
    done.join(" "),
  );
});

test("a job that arrives later slows the first from then on only", async () => {
  // a alone for 50 ms (50 of 100 done), then both at 0.5 each: b's 20 ms take 40 (ends at 90) while a does 20 of
  // its last 50; a ends alone 30 ms later.
  const [a, b] = await runJobs(1, [
    { at: 0, firstMs: 0, totalMs: 100 },
    { at: 50, firstMs: 0, totalMs: 20 },
  ]);
  assert.ok(Math.abs(b!.done - 90) < 0.01, `b: ${b!.done}`);
  assert.ok(Math.abs(a!.done - 120) < 0.01, `a: ${a!.done}`);
});
