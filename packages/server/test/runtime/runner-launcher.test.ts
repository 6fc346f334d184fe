/** How runners are launched for each sandbox mode and machine (a stand-in probe; no process is started). */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { after, describe, test } from "node:test";
import type { SandboxSupport } from "@llmos/protocol";
import { LlmosError } from "../../src/errors.js";
import type { RunnerLoadSpec } from "../../src/runner/ipc-protocol.js";
import { memoryLimitFor, RunnerLauncher } from "../../src/runtime/sandbox/runner-launcher.js";
import type { SandboxMode, SandboxProbe } from "../../src/runtime/sandbox/sandbox-probe.js";
import { createLogger } from "../../src/telemetry/logger.js";

const root = mkdtempSync(path.join(os.tmpdir(), "llmos-launcher-"));
after(() => rmSync(root, { recursive: true, force: true }));
const home = path.join(root, "home");
const cgroups = path.join(root, "cgroup");
mkdirSync(path.join(home, "models", "blobs"), { recursive: true });
mkdirSync(cgroups);
writeFileSync(path.join(home, "models", "blobs", "sha256-aa"), "GGUF");
/** Where `llmos build-cpu-backend` and the background build install the backend (`<home>/engine/ggml-cpu`). */
const builtCpuBackend = path.join(home, "engine", "ggml-cpu");
mkdirSync(builtCpuBackend, { recursive: true });
const logs: string[] = [];
const logger = createLogger("debug", new Writable({ write: (c, _e, cb) => (logs.push(String(c)), cb()) }));

const SPEC: RunnerLoadSpec = {
  engine: "llama-ffi",
  gpu: false,
  cpuBackendDir: null,
  streamIntervalMs: 20,
  modelPath: path.join(home, "models", "blobs", "sha256-aa"),
  contextSize: 512,
  slots: 1,
  threads: 1,
  gpuLayers: 0,
  loraAdapters: [],
};

/** A probe's findings; each gets its own stand-in cgroup folder (its groups are plain folders that stay). */
function probe(effective: SandboxSupport["effective"], parts: Partial<SandboxProbe> = {}): SandboxProbe {
  const parentDir = mkdtempSync(path.join(cgroups, "g-"));
  return {
    support: {
      mode: "auto",
      effective,
      reason: effective === "sandboxed" ? null : "bubblewrap not found (install the bubblewrap package)",
      bubblewrap: null,
      namespaces: effective === "sandboxed",
      runAs: null,
      cgroup: { version: "v2", controllers: { memory: "v2", pids: "v2", cpuset: null, cpu: null }, reason: null },
    },
    bwrap: null,
    drop: null,
    cgroupHomes: [
      { controller: "memory", version: "v2", parentDir },
      { controller: "pids", version: "v2", parentDir },
    ],
    ...parts,
  };
}

function launcher(mode: SandboxMode, found: SandboxProbe) {
  return new RunnerLauncher({
    mode,
    memoryMargin: 0.15,
    home,
    probe: Promise.resolve({ ...found, support: { ...found.support, mode } }),
    entry: "/app/packages/server/dist/src/runner/main.js",
    execArgv: [],
    logger,
  });
}

describe("runner launcher", () => {
  test("off: a plain child of the daemon, no limits", async () => {
    const plan = await launcher("off", probe("sandboxed", { bwrap: "/usr/bin/bwrap" })).plan({
      spec: SPEC,
      label: "m",
      memoryEstimateBytes: 100,
    });
    assert.equal(plan.command, process.execPath);
    assert.deepEqual(plan.args, ["/app/packages/server/dist/src/runner/main.js"]);
    assert.equal(plan.cgroup, null);
    assert.deepEqual(RunnerLauncher.status(plan), {
      sandboxed: false,
      reason: "LLMOS_SANDBOX=off",
      uid: process.getuid?.() ?? null,
      cgroup: null,
      pidsLimit: null,
      cpus: null,
      cpuMaxCores: null,
    });
  });

  test("required on a machine that cannot sandbox: the load is refused with sandbox_unavailable", async () => {
    const error = await launcher("required", probe("partial"))
      .plan({ spec: SPEC, label: "stories:latest", memoryEstimateBytes: 100 })
      .catch((e: unknown) => e);
    assert.ok(error instanceof LlmosError);
    assert.equal(error.code, "sandbox_unavailable");
    assert.match(error.message, /stories:latest.*bubblewrap not found/);
  });

  test("auto without bubblewrap: limits still apply (the runner joins its cgroup first); the reason is kept", async () => {
    const plan = await launcher("auto", probe("partial")).plan({ spec: SPEC, label: "m", memoryEstimateBytes: 100 });
    assert.equal(plan.command, "/bin/sh");
    const sep = plan.args.indexOf("--");
    assert.deepEqual(plan.args.slice(3, sep), plan.cgroup!.procsFiles);
    assert.deepEqual(plan.args.slice(sep + 1), [process.execPath, "/app/packages/server/dist/src/runner/main.js"]);
    assert.equal(plan.sandboxed, false);
    assert.match(plan.reason!, /bubblewrap not found/);
    assert.equal(plan.cgroup!.memoryLimitBytes, memoryLimitFor(100, 0.15));
    assert.ok(
      logs.some((l) => l.includes("runners are not fully sandboxed here")),
      "one warning",
    );
  });

  test("auto on a machine that can: bubblewrap inside the cgroup, the home hidden, the blob bound, no secrets", async () => {
    process.env.LLMOS_TEST_SECRET = "hunter2";
    try {
      const found = probe("sandboxed", {
        bwrap: "/usr/bin/bwrap",
        drop: { setpriv: "/usr/bin/setpriv", uid: 65534, gid: 65534 },
      });
      const plan = await launcher("auto", found).plan({ spec: SPEC, label: "m", memoryEstimateBytes: 1024 ** 3 });
      const sep = plan.args.indexOf("--");
      const inner = plan.args.slice(sep + 1);
      assert.equal(inner[0], "/usr/bin/bwrap");
      assert.ok(inner.includes("--tmpfs") && inner[inner.indexOf(home) - 1] === "--tmpfs", "the home folder is hidden");
      assert.deepEqual(inner.slice(inner.indexOf(SPEC.modelPath) - 1, inner.indexOf(SPEC.modelPath) + 2), [
        "--ro-bind",
        SPEC.modelPath,
        SPEC.modelPath,
      ]);
      assert.ok(inner.includes("/usr/bin/setpriv"));
      assert.equal(plan.env.LLMOS_TEST_SECRET, undefined, "the daemon's environment stays out");
      assert.equal(plan.env.HOME, "/tmp");
      assert.deepEqual(RunnerLauncher.status(plan), {
        sandboxed: true,
        reason: null,
        uid: 65534,
        cgroup: "v2",
        pidsLimit: 128,
        cpus: null,
        cpuMaxCores: null,
      });
    } finally {
      delete process.env.LLMOS_TEST_SECRET;
    }
  });

  test("a CPU backend built under the hidden home folder is bound back read-only", async () => {
    const found = probe("sandboxed", { bwrap: "/usr/bin/bwrap" });
    const plan = await launcher("auto", found).plan({
      spec: { ...SPEC, cpuBackendDir: builtCpuBackend },
      label: "m",
      memoryEstimateBytes: 1024 ** 3,
    });
    const inner = plan.args.slice(plan.args.indexOf("--") + 1);
    assert.equal(inner[inner.indexOf(home) - 1], "--tmpfs", "the home folder is hidden");
    const at = inner.indexOf(builtCpuBackend);
    assert.deepEqual(inner.slice(at - 1, at + 2), ["--ro-bind", builtCpuBackend, builtCpuBackend]);
    assert.ok(at > inner.indexOf(home), "bound after the home is hidden, so it shows through");
  });

  test("a tool worker: its entry, its inputs read-only, its output folder writable and the sandbox user's", async () => {
    const found = probe("sandboxed", {
      bwrap: "/usr/bin/bwrap",
      drop: { setpriv: "/usr/bin/setpriv", uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 },
    });
    const outputDir = mkdtempSync(path.join(home, "worker-"));
    const entry = "/app/packages/server/dist/src/runner/model-tool-worker.js";
    const plan = await launcher("auto", found).planTool({
      label: "the quantize job",
      entry,
      files: [SPEC.modelPath],
      outputDir,
      threads: 2,
      memoryEstimateBytes: 1024 ** 3,
    });
    const inner = plan.args.slice(plan.args.indexOf("--") + 1);
    assert.equal(inner.at(-1), entry);
    assert.equal(inner[inner.indexOf(home) - 1], "--tmpfs", "the home folder is hidden");
    const model = inner.indexOf(SPEC.modelPath);
    assert.deepEqual(inner.slice(model - 1, model + 2), ["--ro-bind", SPEC.modelPath, SPEC.modelPath]);
    const out = inner.indexOf(outputDir);
    assert.deepEqual(inner.slice(out - 1, out + 2), ["--bind", outputDir, outputDir]);
    assert.equal(plan.cgroup?.memoryLimitBytes, memoryLimitFor(1024 ** 3, 0.15));
    assert.ok(!inner.some((a) => a.startsWith("/dev/nvidia")), "no GPU");
  });

  test("a tool worker with the sandbox off is a plain child with its own entry", async () => {
    const entry = "/app/packages/server/dist/src/runner/model-tool-worker.js";
    const plan = await launcher("off", probe("none")).planTool({
      label: "the eval job",
      entry,
      files: [SPEC.modelPath],
      outputDir: null,
      threads: 1,
      memoryEstimateBytes: null,
    });
    assert.equal(plan.sandboxed, false);
    assert.equal(plan.args.at(-1), entry);
  });
});
