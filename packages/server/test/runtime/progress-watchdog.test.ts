import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { checkIntervalMs, isStalled, ProgressWatchdog } from "../../src/runtime/progress-watchdog.js";

describe("progress watchdog", () => {
  test("stalled only with work in flight and no progress for longer than the limit", () => {
    assert.equal(isStalled({ inFlight: 1, lastProgressAt: 0 }, 60_001, 60_000), true);
    assert.equal(isStalled({ inFlight: 1, lastProgressAt: 0 }, 60_000, 60_000), false);
    assert.equal(isStalled({ inFlight: 0, lastProgressAt: 0 }, 1e9, 60_000), false, "an idle runner never stalls");
    assert.equal(isStalled({ inFlight: 3, lastProgressAt: 0 }, 1e9, 0), false, "0 turns the check off");
    assert.equal(checkIntervalMs(60_000), 1000);
    assert.equal(checkIntervalMs(200), 100);
  });

  test("idle time before work does not count; progress resets the clock; fires once", () => {
    let now = 0;
    const stalls: number[] = [];
    const w = new ProgressWatchdog(
      1000,
      (idle) => stalls.push(idle),
      () => now,
    );
    now = 50_000; // idle for a long time: not a stall
    const end = w.begin();
    w.check();
    assert.deepEqual(stalls, []);
    now += 900;
    w.progress();
    now += 900;
    w.check();
    assert.deepEqual(stalls, [], "progress 900 ms ago");
    const second = w.begin(); // more work does not reset the clock of the stuck runner
    now += 200;
    w.check();
    assert.deepEqual(stalls, [1100]);
    now += 5000;
    w.check();
    assert.deepEqual(stalls, [1100], "fires once");
    end();
    second();
    w.dispose();
  });

  test("answered work stops the check; ending twice counts once", () => {
    let now = 0;
    let fired = false;
    const w = new ProgressWatchdog(
      1000,
      () => (fired = true),
      () => now,
    );
    const a = w.begin();
    const b = w.begin();
    a();
    a();
    assert.equal(w.snapshot().inFlight, 1);
    b();
    now += 10_000;
    w.check();
    assert.equal(fired, false);
    w.dispose();
  });
});
