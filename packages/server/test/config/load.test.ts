import assert from "node:assert/strict";
import { describe, it } from "node:test";
import path from "node:path";
import { cpuBackendDir } from "../../src/config/config.js";
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
    assert.throws(
      () => loadConfig({ env: { LLMOS_STREAM_INTERVAL_MS: "-5" } }),
      /LLMOS_STREAM_INTERVAL_MS must be a non-negative integer/,
    );
    assert.throws(
      () => loadConfig({ env: { LLMOS_NUM_PARALLEL: "0" } }),
      /LLMOS_NUM_PARALLEL must be a positive integer/,
    );
  });

  it("finds the CPU backend built here under the home folder unless told otherwise", () => {
    const auto = loadConfig({ env: { LLMOS_HOME: "/srv/llmos" } });
    assert.equal(auto.cpuBackend, "auto");
    assert.equal(cpuBackendDir(auto), "/srv/llmos/engine/ggml-cpu");
    assert.equal(cpuBackendDir(loadConfig({ env: { LLMOS_CPU_BACKEND: "shipped" } })), null);
    const own = loadConfig({ env: { LLMOS_CPU_BACKEND: "relative/backend" } });
    assert.equal(cpuBackendDir(own), path.resolve("relative/backend"));
  });

  it("prompt cache on by default; LLMOS_PROMPT_CACHE=off turns it off", () => {
    assert.equal(loadConfig({ env: {} }).promptCache, true);
    assert.equal(loadConfig({ env: { LLMOS_PROMPT_CACHE: "off" } }).promptCache, false);
    assert.throws(() => loadConfig({ env: { LLMOS_PROMPT_CACHE: "no" } }), /LLMOS_PROMPT_CACHE must be one of on, off/);
  });

  it("background CPU-backend build: auto by default, off on request", () => {
    assert.equal(loadConfig({ env: {} }).cpuBackendBuild, "auto");
    assert.equal(loadConfig({ env: { LLMOS_CPU_BACKEND_BUILD: "off" } }).cpuBackendBuild, "off");
    assert.throws(() => loadConfig({ env: { LLMOS_CPU_BACKEND_BUILD: "yes" } }), /LLMOS_CPU_BACKEND_BUILD/);
  });
});
