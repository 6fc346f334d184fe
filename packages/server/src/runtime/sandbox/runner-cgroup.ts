/**
 * One cgroup per runner, with its memory, pids and CPU limits, in cgroup v1, v2 or both (a hybrid machine): the
 * runner's launcher writes its own pid into `procsFiles` before it executes the runner, so every process of the
 * runner is inside from its first instruction. When the runner goes past its memory limit the kernel stops it
 * (and only it); `oomKills()` tells the daemon that is why it exited.
 */
import { mkdirSync, readdirSync, rmdirSync } from "node:fs";
import path from "node:path";
import type { Controller } from "./cgroup-layout.js";
import {
  readCpuMax,
  readCpus,
  readMemoryPeak,
  readOomKills,
  setCpuMax,
  setCpus,
  setMemoryLimit,
  setPidsLimit,
  type CgroupVersion,
} from "./cgroup-files.js";

/** Where a controller's runner groups are made: the daemon's own group in that controller's hierarchy. */
export interface ControllerHome {
  controller: Controller;
  version: CgroupVersion;
  /** The daemon's group folder; runner groups are made inside it. */
  parentDir: string;
}

export interface RunnerLimits {
  memoryBytes: number | null;
  pidsMax: number | null;
  /** A cpuset list (`0-3`); null: the daemon's CPUs. */
  cpus?: string | null;
  /** CPU time in cores; null: not capped. */
  cpuMaxCores?: number | null;
}

/** A runner's CPU limit in its cgroup (cpuset and cpu.max; see `RunnerHandle.placeCpus`). The thread
 * allotment's affinity is `runtime/cpu-placement.ts`'s `CpuPlacement`. */
export interface CgroupCpuLimit {
  /** A cpuset list such as `0-3,6`; null: every CPU the daemon may use. */
  cpus?: string | null;
  /** CPU time in cores (cpu.max / CFS quota); null: not capped. */
  maxCores?: number | null;
}

interface Part {
  version: CgroupVersion;
  dir: string;
  controllers: Controller[];
}

const GROUP_NAME = /^llmos-(\d+)-\d+$/;
/** Runner groups made by this process so far (several daemons may share a process, as in tests). */
let made = 0;

export class RunnerCgroup {
  private constructor(
    private readonly parts: Part[],
    private memoryLimit: number | null,
    readonly pidsLimit: number | null,
  ) {}

  /** The memory limit (bytes), null without a memory controller or limit. */
  get memoryLimitBytes(): number | null {
    return this.memoryLimit;
  }

  /**
   * Sets the memory limit of a running group (a prestarted runner gets its model's limit when it is given the
   * model). Without a memory controller it does nothing.
   */
  limitMemory(bytes: number): void {
    const memory = this.part("memory");
    if (!memory) return;
    setMemoryLimit(memory.version, memory.dir, bytes);
    this.memoryLimit = bytes;
  }

  /** Makes group `name` under each controller's home and applies `limits`; removes what it made on failure. */
  static create(homes: ControllerHome[], name: string, limits: RunnerLimits): RunnerCgroup {
    const parts: Part[] = [];
    for (const home of homes) {
      const dir = path.join(home.parentDir, name);
      const part = parts.find((p) => p.dir === dir);
      if (part) part.controllers.push(home.controller);
      else parts.push({ version: home.version, dir, controllers: [home.controller] });
    }
    const created: string[] = [];
    try {
      for (const part of parts) {
        mkdirSync(part.dir);
        created.push(part.dir);
      }
      const group = new RunnerCgroup(
        parts,
        limits.memoryBytes !== null && homes.some((h) => h.controller === "memory") ? limits.memoryBytes : null,
        limits.pidsMax !== null && homes.some((h) => h.controller === "pids") ? limits.pidsMax : null,
      );
      const memory = group.part("memory");
      if (memory && group.memoryLimitBytes !== null) setMemoryLimit(memory.version, memory.dir, group.memoryLimitBytes);
      const pids = group.part("pids");
      if (pids && group.pidsLimit !== null) setPidsLimit(pids.dir, group.pidsLimit);
      group.place({ cpus: limits.cpus ?? null, maxCores: limits.cpuMaxCores ?? null });
      return group;
    } catch (error) {
      for (const dir of created.reverse()) tryRmdir(dir);
      throw error;
    }
  }

  /** Removes runner groups left by daemons that are gone (a daemon killed before it could clean up). */
  static sweepStale(homes: ControllerHome[]): void {
    for (const parent of new Set(homes.map((h) => h.parentDir))) {
      let names: string[];
      try {
        names = readdirSync(parent);
      } catch {
        continue;
      }
      for (const name of names) {
        const m = GROUP_NAME.exec(name);
        if (m && !isAlive(Number(m[1]))) tryRmdir(path.join(parent, name));
      }
    }
  }

  /** A group name no other runner (of this or another daemon, in this process or another) uses. */
  static nextName(): string {
    return `llmos-${process.pid}-${++made}`;
  }

  /** The files a process writes its pid to, to join this group in every hierarchy. */
  get procsFiles(): string[] {
    return this.parts.map((p) => path.join(p.dir, "cgroup.procs"));
  }

  /** The version the memory limit lives in (else the first part's). */
  get version(): CgroupVersion {
    return (this.part("memory") ?? this.parts[0]!).version;
  }

  /** The CPUs the runner may run on, null without a cpuset controller. */
  cpus(): string | null {
    const part = this.part("cpuset");
    return part ? readCpus(part.dir) : null;
  }

  /** The CPU time cap in cores, null when not capped. */
  cpuMaxCores(): number | null {
    const part = this.part("cpu");
    return part ? readCpuMax(part.version, part.dir) : null;
  }

  /** Moves the runner onto other CPUs and/or caps its CPU time (applies at once, to a running runner too). */
  place(placement: CgroupCpuLimit): void {
    const cpuset = this.part("cpuset");
    if (cpuset && placement.cpus !== undefined) setCpus(cpuset.version, cpuset.dir, placement.cpus);
    const cpu = this.part("cpu");
    if (cpu && placement.maxCores !== undefined) setCpuMax(cpu.version, cpu.dir, placement.maxCores);
  }

  /** The most memory the group has used (bytes), null when the kernel does not say. */
  peakBytes(): number | null {
    const part = this.part("memory");
    return part ? readMemoryPeak(part.version, part.dir) : null;
  }

  /** How many processes the kernel killed in this group for going past its memory limit. */
  oomKills(): number {
    const part = this.part("memory");
    return part ? readOomKills(part.version, part.dir) : 0;
  }

  /** Removes the group once its processes are gone (retries while the kernel still releases them). */
  async remove(): Promise<void> {
    for (const part of this.parts) {
      for (let attempt = 0; attempt < 20 && !tryRmdir(part.dir); attempt++) await new Promise((r) => setTimeout(r, 50));
    }
  }

  private part(controller: Controller): Part | undefined {
    return this.parts.find((p) => p.controllers.includes(controller));
  }
}

/** True when removed or already gone. */
function tryRmdir(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ENOENT";
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
