/** The affinity placement against a real process: every thread of it is pinned, and unpinned again. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { allowedCpus } from "../../src/config/cpu-set.js";
import { AffinityCpuPlacement, noCpuPlacement, processTree } from "../../src/runtime/cpu-placement.js";

/** `Cpus_allowed_list` of every thread of `pid`. */
function threadCpus(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map(
    (tid) => /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8"))![1]!,
  );
}

const cpus = allowedCpus();
const placement = AffinityCpuPlacement.create(cpus);

test(
  "taskset pins every thread of a runner to its CPU set; null gives it every managed CPU back",
  { skip: placement.enforced ? false : "no taskset here (Linux only)" },
  async () => {
    // A Node process has several threads (libuv's pool, V8's), like a runner.
    const child = spawn(process.execPath, ["-e", "console.log('up'); setTimeout(() => {}, 60000)"], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    try {
      await new Promise((r) => child.stdout.once("data", r));
      await placement.apply(child.pid!, [cpus[0]!]);
      const pinned = threadCpus(child.pid!);
      assert.ok(pinned.length > 1, "several threads");
      assert.deepEqual(new Set(pinned), new Set([String(cpus[0])]));
      await placement.apply(child.pid!, null);
      const all = threadCpus(child.pid!);
      assert.ok(
        all.every((c) => c !== String(cpus[0]) || cpus.length === 1),
        all.join(" "),
      );
      await assert.rejects(placement.apply(child.pid!, [4000]), /taskset 4000 .* failed/);
    } finally {
      child.kill();
    }
  },
);

test(
  "a runner that is a process tree (as a sandboxed one: sh, bubblewrap, node) is pinned in every process",
  { skip: placement.enforced && cpus.length > 1 ? false : "needs taskset and 2 CPUs" },
  async () => {
    // The launcher's shell stays the parent (no exec), as bubblewrap stays the parent of the runner it starts.
    const script = `"${process.execPath}" -e "console.log('up'); setTimeout(() => {}, 60000)"; true`;
    const child = spawn("/bin/sh", ["-c", script], { stdio: ["ignore", "pipe", "ignore"], detached: true });
    try {
      await new Promise((r) => child.stdout.once("data", r));
      const tree = processTree(child.pid!);
      assert.equal(tree.length, 2, `sh and node: ${tree.join(" ")}`);
      await placement.apply(child.pid!, [cpus[1]!]);
      for (const pid of tree) assert.deepEqual(new Set(threadCpus(pid)), new Set([String(cpus[1])]), `pid ${pid}`);
    } finally {
      process.kill(-child.pid!, "SIGKILL");
    }
  },
);

test("without a placement nothing is pinned", async () => {
  assert.equal(noCpuPlacement.enforced, false);
  await noCpuPlacement.apply(process.pid, [0]);
});
