import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadConfig } from "../../src/config/load.js";

describe("loadConfig", () => {
  it("reads settings from the environment", () => {
    const c = loadConfig({ env: { LLMOS_STREAM_INTERVAL_MS: "0", LLMOS_NUM_PARALLEL: "2", LLMOS_THREADS: "3" } });
    assert.equal(c.streamIntervalMs, 0);
    assert.equal(c.parallel, 2);
    assert.equal(c.threads, 3);
  });

  it("defaults the stream interval to 20 ms", () => {
    assert.equal(loadConfig({ env: {} }).streamIntervalMs, 20);
  });

  it("rejects a bad value with the variable's name", () => {
    assert.throws(() => loadConfig({ env: { LLMOS_STREAM_INTERVAL_MS: "-5" } }), /LLMOS_STREAM_INTERVAL_MS must be a non-negative integer/);
    assert.throws(() => loadConfig({ env: { LLMOS_NUM_PARALLEL: "0" } }), /LLMOS_NUM_PARALLEL must be a positive integer/);
  });
});
