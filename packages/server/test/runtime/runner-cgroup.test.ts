/**
 * Runner cgroups in v1 and v2, on a stand-in cgroup file system (folders and files in a temp dir: which file gets
 * which value, what is read back). The real kernel's side runs in test/e2e/sandbox.test.ts and
 * runner-placement.test.ts.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { RunnerCgroup, type ControllerHome } from "../../src/runtime/sandbox/runner-cgroup.js";
import { memoryLimitFor, MIN_MEMORY_HEADROOM, pidsLimitFor } from "../../src/runtime/sandbox/runner-launcher.js";

const root = mkdtempSync(path.join(os.tmpdir(), "llmos-cgroupfs-"));
after(() => rmSync(root, { recursive: true, force: true }));
const MiB = 1024 * 1024;

function folder(...parts: string[]): string {
  const dir = path.join(root, ...parts);
  mkdirSync(dir, { recursive: true });
  return dir;
}
const read = (dir: string, file: string) => readFileSync(path.join(dir, file), "utf8");

describe("runner cgroups", () => {
  test("v1 (this machine's kind): one group per hierarchy; memory with swap, pids, the parent's CPUs", () => {
    const memory = folder("v1", "memory", "process_api", "x");
    const cpuset = folder("v1", "cpuset");
    writeFileSync(path.join(cpuset, "cpuset.effective_cpus"), "0-3\n");
    writeFileSync(path.join(cpuset, "cpuset.effective_mems"), "0\n");
    const homes: ControllerHome[] = [
      { controller: "memory", version: "v1", parentDir: memory },
      { controller: "pids", version: "v1", parentDir: folder("v1", "pids") },
      { controller: "cpuset", version: "v1", parentDir: cpuset },
      { controller: "cpu", version: "v1", parentDir: folder("v1", "cpu") },
    ];
    const name = RunnerCgroup.nextName();
    assert.match(name, new RegExp(`^llmos-${process.pid}-\\d+$`));
    assert.notEqual(RunnerCgroup.nextName(), name, "names never repeat in a process (several daemons may share it)");
    const group = RunnerCgroup.create(homes, name, { memoryBytes: 200 * MiB, pidsMax: 128 });
    const dir = (home: string) => path.join(home, name);
    assert.equal(read(dir(memory), "memory.limit_in_bytes"), String(200 * MiB));
    assert.equal(read(dir(homes[1]!.parentDir), "pids.max"), "128");
    assert.equal(read(dir(cpuset), "cpuset.cpus"), "0-3");
    assert.equal(read(dir(cpuset), "cpuset.mems"), "0", "a v1 cpuset takes no process before its mems are set");
    assert.equal(read(dir(homes[3]!.parentDir), "cpu.cfs_quota_us"), "-1");
    assert.equal(group.version, "v1");
    assert.equal(group.memoryLimitBytes, 200 * MiB);
    assert.equal(group.procsFiles.length, 4);
    // What the kernel reports back.
    writeFileSync(path.join(dir(memory), "memory.max_usage_in_bytes"), String(150 * MiB));
    writeFileSync(path.join(dir(memory), "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
    assert.equal(group.peakBytes(), 150 * MiB);
    assert.equal(group.oomKills(), 1);
    // Placement for the scheduler's thread assignment: other CPUs, a CPU-time cap.
    group.place({ cpus: "2-3", maxCores: 1.5 });
    assert.equal(read(dir(cpuset), "cpuset.cpus"), "2-3");
    assert.equal(read(dir(homes[3]!.parentDir), "cpu.cfs_quota_us"), "150000");
    assert.equal(group.cpuMaxCores(), 1.5);
  });

  test("v2: one group for every controller; memory.max without swap, cpu.max, memory.peak and memory.events", () => {
    const parent = folder("v2", "system.slice", "llmos.service");
    const homes: ControllerHome[] = (["memory", "pids", "cpuset", "cpu"] as const).map((controller) => ({
      controller,
      version: "v2",
      parentDir: parent,
    }));
    const group = RunnerCgroup.create(homes, "llmos-1-7", { memoryBytes: 64 * MiB, pidsMax: 200, cpuMaxCores: 2 });
    const dir = path.join(parent, "llmos-1-7");
    assert.deepEqual(group.procsFiles, [path.join(dir, "cgroup.procs")]);
    assert.equal(read(dir, "memory.max"), String(64 * MiB));
    assert.equal(read(dir, "pids.max"), "200");
    assert.equal(read(dir, "cpu.max"), "200000 100000");
    assert.equal(read(dir, "cpuset.cpus"), "", "empty: the parent's CPUs");
    writeFileSync(path.join(dir, "memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
    writeFileSync(path.join(dir, "memory.peak"), String(60 * MiB));
    assert.equal(group.oomKills(), 1);
    assert.equal(group.peakBytes(), 60 * MiB);
    group.place({ maxCores: null });
    assert.equal(read(dir, "cpu.max"), "max 100000");
    assert.equal(group.cpuMaxCores(), null);
  });

  test("a group that cannot be made leaves nothing behind; groups of dead daemons are swept", async () => {
    const parent = folder("sweep");
    const missing = path.join(root, "does-not-exist");
    const homes: ControllerHome[] = [
      { controller: "pids", version: "v1", parentDir: parent },
      { controller: "memory", version: "v1", parentDir: missing },
    ];
    assert.throws(() => RunnerCgroup.create(homes, "llmos-9-1", { memoryBytes: MiB, pidsMax: 10 }));
    assert.equal(existsSync(path.join(parent, "llmos-9-1")), false);
    mkdirSync(path.join(parent, "llmos-999999999-3")); // no such process
    mkdirSync(path.join(parent, `llmos-${process.pid}-4`)); // alive: kept
    mkdirSync(path.join(parent, "other-group"));
    RunnerCgroup.sweepStale([{ controller: "pids", version: "v1", parentDir: parent }]);
    assert.equal(existsSync(path.join(parent, "llmos-999999999-3")), false);
    assert.equal(existsSync(path.join(parent, `llmos-${process.pid}-4`)), true);
    assert.equal(existsSync(path.join(parent, "other-group")), true);
  });

  test("limits: the estimate plus the margin, at least 512 MiB over it; pids grow with threads", () => {
    assert.equal(memoryLimitFor(4096 * MiB, 0.15), Math.ceil((4096 * MiB * 1.15) / 4096) * 4096);
    assert.equal(memoryLimitFor(80 * MiB, 0.15), 80 * MiB + MIN_MEMORY_HEADROOM);
    assert.equal(pidsLimitFor(1), 128);
    assert.equal(pidsLimitFor(64), 320);
  });
});
