import { readFileSync } from "node:fs";
import os from "node:os";
import type { CpuBackendBuildStatus, SandboxSupport } from "@llmos/protocol";

export interface GpuInfo {
  type: string;
  name: string;
  totalVramBytes: number;
  freeVramBytes: number;
}

/** What this node has: CPU, RAM, GPUs. */
export interface NodeInventory {
  hostname: string;
  platform: string;
  arch: string;
  cpu: { model: string; cores: number; availableParallelism: number };
  memory: { totalBytes: number; freeBytes: number; availableBytes: number };
  gpus: GpuInfo[];
  gpuBackend: string | null;
  /** The CPU backend setting and the backend built on this machine, if any (what new runners try first). */
  cpuBackend?: {
    setting: string;
    builtHere: { dir: string; release: string; variant: string; compiler: string; builtAt: string } | null;
    /** The background build (LLMOS_CPU_BACKEND_BUILD): its state, phase and progress, or why there is none. */
    build?: CpuBackendBuildStatus;
  };
  /** What this machine offers to isolate runners (namespaces, bubblewrap, cgroups) and what runners get. */
  sandbox?: SandboxSupport;
}

/** Reads MemAvailable (what the kernel can give without swapping) on Linux; falls back to free memory. */
function availableMemory(): number {
  try {
    const text = readFileSync("/proc/meminfo", "utf8");
    const m = /MemAvailable:\s+(\d+) kB/.exec(text);
    if (m) return Number(m[1]) * 1024;
  } catch {
    /* not Linux */
  }
  return os.freemem();
}

/** Node inventory; GPUs come from the probe the daemon runs once at start-up (node-llama-cpp's detection). */
export function readInventory(gpus: { backend: string | null; devices: GpuInfo[] }): NodeInventory {
  const cpus = os.cpus();
  return {
    hostname: os.hostname(),
    platform: os.platform(),
    arch: os.arch(),
    cpu: { model: cpus[0]?.model ?? "unknown", cores: cpus.length, availableParallelism: os.availableParallelism() },
    memory: { totalBytes: os.totalmem(), freeBytes: os.freemem(), availableBytes: availableMemory() },
    gpus: gpus.devices,
    gpuBackend: gpus.backend,
  };
}
