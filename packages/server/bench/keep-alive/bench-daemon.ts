/**
 * Real daemons for the keep-alive benchmark: each run gets a fresh home with the benchmark's models imported, the
 * chosen policy, the fixed keep-alive scaled to the trace, the memory budget and (for a learned policy) a copy of the
 * usage store a learning replay left, and the CPU backend built once on this machine (no build in the background
 * while it measures). The daemon runs in this process, so runs count cold starts, idle memory and
 * violations from its scheduler's own events, the same way the simulator does.
 */
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { KeepPolicyName } from "@llmos/protocol";
import { startDaemon, type Daemon } from "../../src/daemon.js";
import { builtHereCpuBackendDir } from "../native-bench.js";

export interface BenchModelFile {
  /** Name in the daemon (and in the traces). */
  name: string;
  path: string;
}

export interface BenchDaemonOptions {
  models: readonly BenchModelFile[];
  policy: KeepPolicyName;
  keepAliveMs: number;
  memoryBudgetBytes: number;
  usageDayMs: number;
  threads: number;
  /** Parallel sequences per model (each 512 tokens of context). */
  parallel: number;
  /** A usage store (an `llmos.db` a learning run left) to start from. */
  usageDatabase?: string;
  /** An existing home to reuse (a restart) instead of a fresh one. */
  home?: string;
}

export interface BenchDaemon {
  daemon: Daemon;
  home: string;
  /** Stops the daemon; removes the home unless `keepHome`. */
  stop(keepHome?: boolean): Promise<void>;
}

export async function startBenchDaemon(o: BenchDaemonOptions): Promise<BenchDaemon> {
  const fresh = o.home === undefined;
  const home = o.home ?? mkdtempSync(path.join(os.tmpdir(), "llmos-bench-keep-"));
  if (o.usageDatabase) copyDatabase(o.usageDatabase, path.join(home, "llmos.db"));
  const daemon = await startDaemon({
    home,
    port: 0,
    threads: o.threads,
    engine: "llama-ffi",
    gpu: "off",
    logLevel: "warn",
    contextSize: 512,
    parallel: o.parallel,
    keepAliveMs: o.keepAliveMs,
    keepPolicy: o.policy,
    usageDayMs: o.usageDayMs,
    memoryBudgetBytes: o.memoryBudgetBytes,
    maxQueuePerModel: 512,
    maxQueueTotal: 4096,
    // Every run has a fresh home: left to itself, each daemon would build the CPU backend into it in the
    // background, and the build's compiler would share the two cores with the measured loads and requests (it did
    // in the first two full runs: the five identical 42M copies calibrated at 260-1010 ms load). The backend built
    // once on this machine serves every run instead, as a user's home keeps the one it built.
    cpuBackend: builtHereCpuBackendDir() ?? "shipped",
    cpuBackendBuild: "off",
  });
  try {
    if (fresh) for (const m of o.models) await daemon.store.importFile(m.path, m.name);
  } catch (error) {
    await daemon.close();
    throw error;
  }
  return {
    daemon,
    home,
    stop: async (keepHome = false) => {
      await daemon.close();
      if (!keepHome) rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Copies a closed SQLite database (and its WAL files, if any were left). */
export function copyDatabase(from: string, to: string): void {
  for (const suffix of ["", "-wal", "-shm"]) {
    rmSync(to + suffix, { force: true });
    if (existsSync(from + suffix)) copyFileSync(from + suffix, to + suffix);
  }
}

/** A counter's value per label value from the daemon's `/metrics` (e.g. llmos_prewarm_total by result). */
export async function metricByLabel(url: string, name: string, label: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  const re = new RegExp(`^${name}\\{(?:[^}]*,)?${label}="([^"]*)"[^}]*\\} (\\S+)$`, "gm");
  for (const m of text.matchAll(re)) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
  return out;
}
