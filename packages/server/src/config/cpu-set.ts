/**
 * The CPUs llmos shares among its runners (`LLMOS_CPUS`): Linux CPU list syntax (`0-3,8`), a count (the first N
 * CPUs this process may run on), and the process's own CPU set, read from `/proc/self/status`.
 */
import { readFileSync } from "node:fs";
import os from "node:os";

/** `0-3,8,10-11` -> [0, 1, 2, 3, 8, 10, 11] (sorted, without duplicates). Throws on anything else. */
export function parseCpuList(text: string): number[] {
  const out = new Set<number>();
  for (const part of text.split(",").map((p) => p.trim())) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`invalid CPU list "${text}": use ids and ranges like 0-3,8`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from || to - from > 4096) throw new Error(`invalid CPU range "${part}" in "${text}"`);
    for (let c = from; c <= to; c++) out.add(c);
  }
  return [...out].sort((a, b) => a - b);
}

/** [0, 1, 2, 3, 8] -> `0-3,8`. */
export function formatCpuList(cpus: readonly number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/** The CPUs this process may run on: its affinity on Linux (`Cpus_allowed_list`), else 0..cores-1. */
export function allowedCpus(): number[] {
  if (process.platform === "linux") {
    try {
      const line = /^Cpus_allowed_list:\s*(\S+)\s*$/m.exec(readFileSync("/proc/self/status", "utf8"));
      if (line) return parseCpuList(line[1]!);
    } catch {
      // no /proc: fall back to the count
    }
  }
  return Array.from({ length: Math.max(1, os.availableParallelism()) }, (_, i) => i);
}

/**
 * `LLMOS_CPUS`: a plain number is a count (the first N of `allowed`), anything else a CPU list, which must be a
 * subset of `allowed`.
 */
export function parseManagedCpus(value: string, allowed: readonly number[]): number[] {
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n < 1 || n > allowed.length)
      throw new Error(`LLMOS_CPUS must be between 1 and ${allowed.length} (the CPUs llmos may use), got ${n}`);
    return allowed.slice(0, n);
  }
  const cpus = parseCpuList(text);
  const outside = cpus.filter((c) => !allowed.includes(c));
  if (outside.length > 0)
    throw new Error(
      `LLMOS_CPUS names CPUs llmos may not run on: ${formatCpuList(outside)} (allowed: ${formatCpuList(allowed)})`,
    );
  return cpus;
}
