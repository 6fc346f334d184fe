import assert from "node:assert/strict";
import { describe, it } from "node:test";
import path from "node:path";
import { cpuBackendDir } from "../../src/config/config.js";
import { allowedCpus, formatCpuList, parseCpuList } from "../../src/config/cpu-set.js";
import { loadConfig } from "../../src/config/load.js";

describe("loadConfig", () => {
  it("reads settings from the environment", () => {
    const c = loadConfig({ env: { LLMOS_STREAM_INTERVAL_MS: "0", LLMOS_NUM_PARALLEL: "2", LLMOS_THREADS: "3" } });
    assert.equal(c.streamIntervalMs, 0);
    assert.equal(c.parallel, 2);
    assert.equal(c.threads, 3);
  });

  it("reads the keep-alive policy (default histogram) and refuses an unknown one", () => {
    assert.equal(loadConfig({ env: {} }).keepPolicy, "histogram");
    for (const p of ["fixed", "lru", "gdsf", "histogram"] as const)
      assert.equal(loadConfig({ env: { LLMOS_KEEP_POLICY: p } }).keepPolicy, p);
    assert.throws(
      () => loadConfig({ env: { LLMOS_KEEP_POLICY: "magic" } }),
      /LLMOS_KEEP_POLICY must be one of fixed, lru, gdsf, histogram, got "magic"/,
    );
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

  it("reads the sandbox mode, its user and the memory margin", () => {
    const d = loadConfig({ env: {} });
    assert.equal(d.sandbox, "auto");
    assert.equal(d.sandboxUser, "nobody");
    assert.equal(d.memoryMargin, 0.15);
    const c = loadConfig({
      env: { LLMOS_SANDBOX: "required", LLMOS_SANDBOX_USER: "1000:1000", LLMOS_MEMORY_MARGIN: "25%" },
    });
    assert.equal(c.sandbox, "required");
    assert.equal(c.sandboxUser, "1000:1000");
    assert.equal(c.memoryMargin, 0.25);
    assert.equal(loadConfig({ env: { LLMOS_MEMORY_MARGIN: "0.5" } }).memoryMargin, 0.5);
    assert.throws(
      () => loadConfig({ env: { LLMOS_SANDBOX: "yes" } }),
      /LLMOS_SANDBOX must be one of auto, off, required/,
    );
    assert.throws(
      () => loadConfig({ env: { LLMOS_MEMORY_MARGIN: "-5%" } }),
      /LLMOS_MEMORY_MARGIN must be a percentage/,
    );
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

describe("the cores llmos shares (LLMOS_CPUS)", () => {
  const allowed = allowedCpus();

  it("defaults to every CPU the process may run on, and LLMOS_THREADS to all of them", () => {
    const c = loadConfig({ env: {} });
    assert.deepEqual(c.cpus, allowed);
    assert.equal(c.threads, allowed.length);
    assert.equal(c.cpuAffinity, false);
  });

  it("takes a count (the first N allowed CPUs) or a CPU list; LLMOS_THREADS follows unless set", () => {
    const one = loadConfig({ env: { LLMOS_CPUS: "1" } });
    assert.deepEqual(one.cpus, allowed.slice(0, 1));
    assert.equal(one.threads, 1);
    const list = loadConfig({ env: { LLMOS_CPUS: `${allowed[0]}-${allowed[0]}`, LLMOS_THREADS: "4" } });
    assert.deepEqual(list.cpus, [allowed[0]]);
    assert.equal(list.threads, 4, "an explicit LLMOS_THREADS is kept (allotments stay within the cores anyway)");
    assert.equal(loadConfig({ env: { LLMOS_CPU_AFFINITY: "on" } }).cpuAffinity, true);
  });

  it("rejects counts and CPUs the process may not use, and malformed lists", () => {
    assert.throws(() => loadConfig({ env: { LLMOS_CPUS: "0" } }), /LLMOS_CPUS must be between 1 and/);
    assert.throws(() => loadConfig({ env: { LLMOS_CPUS: String(allowed.length + 1) } }), /LLMOS_CPUS must be between/);
    assert.throws(() => loadConfig({ env: { LLMOS_CPUS: "0-2,x" } }), /invalid CPU list/);
    assert.throws(() => loadConfig({ env: { LLMOS_CPUS: "5-3" } }), /invalid CPU range/);
    assert.throws(() => loadConfig({ env: { LLMOS_CPUS: "4096,4097" } }), /CPUs llmos may not run on: 4096-4097/);
    assert.throws(
      () => loadConfig({ env: { LLMOS_CPU_AFFINITY: "yes" } }),
      /LLMOS_CPU_AFFINITY must be one of on, off/,
    );
  });

  it("reads and writes Linux CPU lists", () => {
    assert.deepEqual(parseCpuList("0-3,8,10-11, 2"), [0, 1, 2, 3, 8, 10, 11]);
    assert.equal(formatCpuList([11, 0, 1, 2, 3, 8, 10]), "0-3,8,10-11");
    assert.equal(formatCpuList([]), "");
  });
});
