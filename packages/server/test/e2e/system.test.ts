import assert from "node:assert/strict";
import os from "node:os";
import { after, before, describe, test } from "node:test";
import { adminHeaders, api, startTestDaemon, type TestDaemon } from "../support/daemon.js";

describe("node inventory", () => {
  let d: TestDaemon;
  // gpu "auto": the probe asks node-llama-cpp in a child process; on a CPU-only machine it finds no GPU.
  before(
    async () =>
      (d = await startTestDaemon({ gpu: "auto", memoryBudgetBytes: 3 * 1024 ** 3 }, { importStories: false })),
  );
  after(async () => d?.stop());

  test("GET /api/system: CPU, RAM, GPUs (CPU-only is first-class) and the memory budget", async () => {
    const r = await api(d, "GET", "/api/system", undefined, adminHeaders(d));
    assert.equal(r.status, 200);
    assert.equal(r.json.cpu.cores, os.cpus().length);
    assert.equal(r.json.memory.totalBytes, os.totalmem());
    assert.ok(r.json.memory.availableBytes > 0 && r.json.memory.availableBytes <= os.totalmem());
    assert.ok(Array.isArray(r.json.gpus));
    for (const g of r.json.gpus) assert.ok(g.totalVramBytes > 0);
    assert.equal(r.json.memoryBudget.budgetBytes, 3 * 1024 ** 3);
    assert.equal(r.json.threads, 1);
    // Nothing was built in this daemon's fresh home: runners use the shipped CPU backend, and this test daemon does
    // not build one in the background (LLMOS_CPU_BACKEND_BUILD=off): it only hints at the command.
    const { build, ...cpuBackend } = r.json.cpuBackend;
    assert.deepEqual(cpuBackend, { setting: "auto", builtHere: null });
    assert.equal(build.state, "off");
    assert.match(build.message, /llmos build-cpu-backend/);
  });

  test("the same inventory is in /metrics", async () => {
    const text = (await api(d, "GET", "/metrics")).text;
    assert.match(text, new RegExp(`llmos_node_memory_bytes\\{kind="total"\\} ${os.totalmem()}`));
    assert.match(text, new RegExp(`llmos_node_cpu_cores ${os.cpus().length}`));
    assert.match(text, /llmos_memory_bytes\{kind="budget"\} 3221225472/);
  });
});
