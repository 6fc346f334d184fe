/**
 * The cgroup files each limit is written to, in v1 and v2. One runner's group may span both on a hybrid machine
 * (memory in a v1 hierarchy, say, and nothing in v2), so every operation is per controller.
 *
 * | limit          | v1                                              | v2                         |
 * | -------------- | ----------------------------------------------- | -------------------------- |
 * | memory         | memory.limit_in_bytes (+ memory.memsw...: swap) | memory.max, memory.swap.max |
 * | peak memory    | memory.max_usage_in_bytes                       | memory.peak (Linux 5.19+)  |
 * | OOM kills      | memory.oom_control `oom_kill`                   | memory.events `oom_kill`   |
 * | processes      | pids.max                                        | pids.max                   |
 * | CPU set        | cpuset.cpus + cpuset.mems (both must be set)     | cpuset.cpus (empty: parent's) |
 * | CPU time       | cpu.cfs_quota_us / cpu.cfs_period_us            | cpu.max "quota period"     |
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

export type CgroupVersion = "v1" | "v2";

/** The CFS period the CPU quota is expressed in (100 ms, the kernel's default). */
const CPU_PERIOD_US = 100_000;

function read(dir: string, file: string): string | null {
  try {
    return readFileSync(path.join(dir, file), "utf8").trim();
  } catch {
    return null;
  }
}

function write(dir: string, file: string, value: string): void {
  writeFileSync(path.join(dir, file), value);
}

/** Writes when the file exists (swap accounting, for one, is often compiled out). */
function writeIfPresent(dir: string, file: string, value: string): void {
  if (existsSync(path.join(dir, file))) write(dir, file, value);
}

function numberIn(text: string | null): number | null {
  if (text === null || text === "max") return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}

/** `key value` lines (memory.events, memory.oom_control) -> the value of `key`. */
function field(text: string | null, key: string): number | null {
  const m = text ? new RegExp(`^${key} (\\d+)$`, "m").exec(text) : null;
  return m ? Number(m[1]) : null;
}

export function setMemoryLimit(version: CgroupVersion, dir: string, bytes: number): void {
  if (version === "v1") {
    // Memory + swap at the same value: a runner past its limit is stopped instead of swapping the machine. The
    // kernel refuses a memory limit above the memory + swap limit, so a raise sets memory + swap first.
    const memsw = numberIn(read(dir, "memory.memsw.limit_in_bytes"));
    if (memsw !== null && bytes > memsw) write(dir, "memory.memsw.limit_in_bytes", String(bytes));
    write(dir, "memory.limit_in_bytes", String(bytes));
    writeIfPresent(dir, "memory.memsw.limit_in_bytes", String(bytes));
  } else {
    write(dir, "memory.max", String(bytes));
    writeIfPresent(dir, "memory.swap.max", "0");
  }
}

export function readMemoryPeak(version: CgroupVersion, dir: string): number | null {
  return numberIn(read(dir, version === "v1" ? "memory.max_usage_in_bytes" : "memory.peak"));
}

export function readOomKills(version: CgroupVersion, dir: string): number {
  const text = version === "v1" ? read(dir, "memory.oom_control") : read(dir, "memory.events");
  return field(text, "oom_kill") ?? 0;
}

export function setPidsLimit(dir: string, max: number): void {
  write(dir, "pids.max", String(max));
}

/**
 * Puts the group on `cpus` (a cpuset list such as `0-3,6`), or on its parent's CPUs when null. A v1 cpuset group
 * starts with no CPUs and no memory nodes, and takes no process until both are set, so they are copied from the
 * parent first.
 */
export function setCpus(version: CgroupVersion, dir: string, cpus: string | null): void {
  const parent = path.dirname(dir);
  if (version === "v1") {
    if (!read(dir, "cpuset.mems"))
      write(dir, "cpuset.mems", read(parent, "cpuset.effective_mems") || read(parent, "cpuset.mems") || "0");
    write(dir, "cpuset.cpus", cpus ?? (read(parent, "cpuset.effective_cpus") || read(parent, "cpuset.cpus") || "0"));
  } else {
    write(dir, "cpuset.cpus", cpus ?? "");
  }
}

/** The CPUs the group runs on (its effective set). */
export function readCpus(dir: string): string | null {
  return read(dir, "cpuset.effective_cpus") || read(dir, "cpuset.cpus") || null;
}

/** Caps the group's CPU time at `cores` cores (fractions allowed), or lifts the cap when null. */
export function setCpuMax(version: CgroupVersion, dir: string, cores: number | null): void {
  const quota = cores === null ? null : Math.max(1000, Math.round(cores * CPU_PERIOD_US));
  if (version === "v1") {
    write(dir, "cpu.cfs_period_us", String(CPU_PERIOD_US));
    write(dir, "cpu.cfs_quota_us", quota === null ? "-1" : String(quota));
  } else {
    write(dir, "cpu.max", `${quota === null ? "max" : quota} ${CPU_PERIOD_US}`);
  }
}

export function readCpuMax(version: CgroupVersion, dir: string): number | null {
  if (version === "v1") {
    const quota = numberIn(read(dir, "cpu.cfs_quota_us"));
    const period = numberIn(read(dir, "cpu.cfs_period_us"));
    return quota === null || quota < 0 || !period ? null : quota / period;
  }
  const [quota, period] = (read(dir, "cpu.max") ?? "max").split(" ");
  const q = numberIn(quota ?? "max");
  const p = numberIn(period ?? null);
  return q === null || !p ? null : q / p;
}
