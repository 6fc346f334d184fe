/**
 * Where a runner's threads may run: the CPU set part of a CPU allotment, applied to the runner's process from the
 * daemon. The scheduler decides the sets (scheduler/cpu-allotment.ts) and hands them to a `CpuPlacement`:
 * - `none` (the default): threads are not pinned; the kernel places them (the thread counts alone keep the cores
 *   from being oversubscribed);
 * - `affinity` (`LLMOS_CPU_AFFINITY=on`, Linux): `taskset -a -p -c` sets the affinity of every thread of every
 *   process of the runner (threads created later inherit it). A sandboxed runner is a tree: the launcher's pid is
 *   bubblewrap's, and node runs two processes below it (bubblewrap's init in the PID namespace, then node), so the
 *   placement walks the tree from the pid it is given (`/proc/<pid>/task/<tid>/children`);
 * The sandbox's cgroup cpuset (`RunnerHandle.placeCpus`) is left at the daemon's CPUs: a cpuset narrower than a
 * later affinity would make that affinity fail.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";

export interface CpuPlacement {
  /** Shown in `/api/ps` (`cpu.placement`). */
  readonly kind: string;
  /** True when `apply` actually restricts where threads run. */
  readonly enforced: boolean;
  /** Lets the runner process `pid` run only on `cpus` (null: on every CPU). Rejects when it could not. */
  apply(pid: number, cpus: readonly number[] | null): Promise<void>;
}

/** Threads are not pinned. */
export const noCpuPlacement: CpuPlacement = {
  kind: "none",
  enforced: false,
  apply: async () => undefined,
};

/** The CPU affinity of every thread of a runner, set with util-linux's `taskset`. */
export class AffinityCpuPlacement implements CpuPlacement {
  readonly kind = "affinity";
  readonly enforced = true;

  constructor(
    private readonly allCpus: readonly number[],
    private readonly taskset = "taskset",
  ) {}

  /** An affinity placement when `taskset` is there (Linux), else none. */
  static create(allCpus: readonly number[]): CpuPlacement {
    const found = ["/usr/bin/taskset", "/bin/taskset"].find((p) => existsSync(p));
    return process.platform === "linux" && found ? new AffinityCpuPlacement(allCpus, found) : noCpuPlacement;
  }

  async apply(pid: number, cpus: readonly number[] | null): Promise<void> {
    const list = (cpus && cpus.length > 0 ? cpus : this.allCpus).join(",");
    await Promise.all(processTree(pid).map((p) => this.taskset1(p, list, p === pid)));
  }

  /** Sets the affinity of every thread of `pid`; a descendant that exited meanwhile is not an error. */
  private taskset1(pid: number, list: string, root: boolean): Promise<void> {
    return new Promise((resolve, reject) =>
      execFile(this.taskset, ["-a", "-p", "-c", list, String(pid)], { timeout: 5000 }, (error, _out, stderr) => {
        if (!error || (!root && !existsSync(`/proc/${pid}`))) return resolve();
        reject(new Error(`taskset ${list} ${pid} failed: ${stderr.trim() || error.message}`));
      }),
    );
  }
}

/** `pid` and every process below it (children of any of its threads), parents first. */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const visit = (p: number) => {
    out.push(p);
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${p}/task`);
    } catch {
      return; // gone, or not Linux
    }
    for (const tid of tids) {
      let children = "";
      try {
        children = readFileSync(`/proc/${p}/task/${tid}/children`, "utf8");
      } catch {
        continue;
      }
      for (const c of children.split(" ").filter(Boolean)) if (!out.includes(Number(c))) visit(Number(c));
    }
  };
  visit(pid);
  return out;
}
