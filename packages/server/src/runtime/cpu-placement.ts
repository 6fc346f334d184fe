/**
 * Where a runner's threads may run: the CPU set part of a CPU allotment, applied to the runner's process from the
 * daemon. The scheduler decides the sets (scheduler/cpu-allotment.ts) and hands them to a `CpuPlacement`:
 * - `none` (the default): threads are not pinned; the kernel places them (the thread counts alone keep the cores
 *   from being oversubscribed);
 * - `affinity` (`LLMOS_CPU_AFFINITY=on`, Linux): `taskset -a -p -c` sets the affinity of every thread of the
 *   runner (threads created later inherit it);
 * - a cgroup cpuset controller (the runner sandbox) implements the same interface.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";

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

  apply(pid: number, cpus: readonly number[] | null): Promise<void> {
    const list = (cpus && cpus.length > 0 ? cpus : this.allCpus).join(",");
    return new Promise((resolve, reject) =>
      execFile(this.taskset, ["-a", "-p", "-c", list, String(pid)], { timeout: 5000 }, (error, _out, stderr) =>
        error ? reject(new Error(`taskset ${list} ${pid} failed: ${stderr.trim() || error.message}`)) : resolve(),
      ),
    );
  }
}
