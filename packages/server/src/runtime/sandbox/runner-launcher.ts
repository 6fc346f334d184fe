/**
 * How a runner process is started: the command line (plain node; or node inside bubblewrap, dropped to an
 * unprivileged user when the daemon is root), its environment, and its cgroup with limits. The runtime spawns
 * what `plan` returns; with a cgroup, a tiny shell first writes its own pid into the group's `cgroup.procs` files
 * and then `exec`s the rest, so the runner is limited from its first instruction (no window in which it runs
 * outside the group).
 *
 *   sh -c '<join the groups>; exec "$@"' -- bwrap <namespaces, mounts> -- [setpriv --reuid=nobody ... --] node runner
 */
import { chmodSync, chownSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { RunnerSandboxStatus, SandboxSupport } from "@llmos/protocol";
import { processEnvironment } from "../../config/config.js";
import { LlmosError } from "../../errors.js";
import type { RunnerEngineSpec, RunnerLoadSpec } from "../../runner/ipc-protocol.js";
import type { Logger } from "../../telemetry/logger.js";
import { ALWAYS_HIDDEN, bwrapArgs, isInside } from "./bwrap-args.js";
import { existingPaths, realpathOr } from "./host-paths.js";
import { RunnerCgroup, type CgroupCpuLimit } from "./runner-cgroup.js";
import type { SandboxMode, SandboxProbe } from "./sandbox-probe.js";

export interface LaunchRequest {
  spec: RunnerLoadSpec;
  /** The model's name (messages). */
  label: string;
  /** The scheduler's memory estimate for this runner (RAM bytes); the limit adds the margin. Null: no limit. */
  memoryEstimateBytes: number | null;
  /** Where the runner may run (default: the daemon's CPUs, uncapped). */
  cpu?: CgroupCpuLimit;
}

export interface LaunchPlan {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** The runner's cgroup (limits, peak memory, OOM kills), null when it has none. */
  cgroup: RunnerCgroup | null;
  sandboxed: boolean;
  /**
   * A prestarted sandboxed runner's own folder, bound read-only into its sandbox, where its model's files are
   * linked when it is given one; removed when the runner exits.
   */
  dropDir?: string;
  /** Why the runner is not fully isolated; null when it is. */
  reason: string | null;
  uid: number | null;
}

export interface LauncherOptions {
  mode: SandboxMode;
  /** Memory limit over the estimate, as a fraction (`LLMOS_MEMORY_MARGIN`). */
  memoryMargin: number;
  /** The daemon's home folder (`LLMOS_HOME`), hidden from runners. */
  home: string;
  /** The probe's findings (started at daemon start-up). */
  probe: Promise<SandboxProbe>;
  /** The runner's entry file, and node's arguments before it (e.g. a TypeScript loader in tests). */
  entry: string;
  execArgv: string[];
  /** The daemon's environment (`LlmosConfig.environment`); default this process's. */
  env?: Readonly<NodeJS.ProcessEnv>;
  logger: Logger;
}

/**
 * Environment variables a sandboxed runner keeps: locale, time zone, what GPU runtimes read, and the watchdog tests'
 * stall marker (runner/test-stall.ts; as unsandboxed runners inherit it).
 */
const KEPT_ENV =
  /^(LLMOS_TEST_RUNNER_STALL|PATH|LANG|LANGUAGE|LC_[A-Z]+|TZ|LD_LIBRARY_PATH|CUDA_[A-Z_]+|NVIDIA_[A-Z_]+|HIP_[A-Z_]+|ROCR_[A-Z_]+|HSA_[A-Z_]+|GPU_[A-Z_]+|GGML_[A-Z_]+|VK_[A-Z_]+|NODE_LLAMA_CPP_[A-Z_]+)$/;

/** Most processes and threads a runner may have: node's own, llama.cpp's threads, room to spare; not a fork bomb. */
export function pidsLimitFor(threads: number): number {
  return Math.max(128, 64 + 4 * threads);
}

/**
 * The least headroom over the estimate. The estimate covers weights, KV cache and compute buffers, not what one
 * request needs for a moment: llama.cpp's tokenizer takes about 100 bytes per byte of text (2 MiB of messages, which
 * the body limits allow, pushed stories260K's runner past 137 MiB), and the JavaScript heap, a burst of threads or
 * child processes move a small runner by tens of MiB more. The limit is a ceiling the kernel enforces, not memory
 * set aside, so a generous floor costs nothing until a runner really runs away.
 */
export const MIN_MEMORY_HEADROOM = 512 * 1024 * 1024;

/** The memory limit for an estimate: the estimate plus the margin (at least `MIN_MEMORY_HEADROOM`), whole pages. */
export function memoryLimitFor(estimateBytes: number, margin: number): number {
  const headroom = Math.max(estimateBytes * margin, MIN_MEMORY_HEADROOM);
  return Math.ceil((estimateBytes + headroom) / 4096) * 4096;
}

/** What a model-tool worker (quantize, imatrix, eval) is started with. */
export interface ToolLaunchRequest {
  /** The job (messages). */
  label: string;
  /** The worker's entry file. */
  entry: string;
  /** Files it reads (model blobs, an imatrix), bound read-only. */
  files: string[];
  /** The one folder it may write (its output's), bound writable; null: none. */
  outputDir: string | null;
  threads: number;
  /** The job's memory reservation (RAM bytes); the limit adds the margin. Null: no limit. */
  memoryEstimateBytes: number | null;
}

/** The folder of the daemon's home where prestarted runners' folders are made (emptied at start-up). */
export const PRESTARTED_DIR = "prestarted";

/** Joins every cgroup listed before `--`, then becomes the command after it. */
const JOIN_CGROUPS = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"';

export class RunnerLauncher {
  private readonly codeRoots: string[];
  private readonly env: Readonly<NodeJS.ProcessEnv>;

  constructor(private readonly options: LauncherOptions) {
    this.codeRoots = codeRoots(options.entry, options.execArgv);
    this.env = options.env ?? processEnvironment();
    options.probe.then(
      (p) => {
        const s = p.support;
        if (s.mode === "auto" && s.effective !== "sandboxed")
          options.logger.warn({ sandbox: s.effective, reason: s.reason }, "runners are not fully sandboxed here");
        else if (s.mode === "required" && s.effective !== "sandboxed")
          options.logger.error(
            { reason: s.reason },
            "LLMOS_SANDBOX=required, but runners cannot be sandboxed here: loads will fail",
          );
        else if (s.effective === "sandboxed") options.logger.debug({ runAs: s.runAs }, "runners are sandboxed");
      },
      () => undefined,
    );
    void options.probe.then((p) => RunnerCgroup.sweepStale(p.cgroupHomes)).catch(() => undefined);
    // Folders of prestarted runners a previous daemon on this home left (its runners died with it).
    rmSync(path.join(options.home, PRESTARTED_DIR), { recursive: true, force: true });
  }

  /** What this machine supports (for `GET /api/system`). */
  async support(): Promise<SandboxSupport> {
    return (await this.options.probe).support;
  }

  /** The command, environment and cgroup of a new runner; `required` mode throws when it cannot be isolated. */
  plan(request: LaunchRequest): Promise<LaunchPlan> {
    const { spec } = request;
    return this.build({
      label: request.label,
      entry: this.options.entry,
      engine: spec,
      files: [spec.modelPath, ...(spec.loraAdapters ?? []).map((a) => a.path)],
      memoryEstimateBytes: request.memoryEstimateBytes,
      cpu: request.cpu,
    });
  }

  /**
   * The plan of a prestarted runner: a runner with its engine and no model yet (runtime/prestarted-runner.ts).
   * Sandboxed, it sees one empty folder of its own (read-only) where `admit` later links its model's files, and
   * nothing else of the store; its memory limit is its estimate until `admit` sets its model's.
   */
  async planPrestarted(engine: RunnerEngineSpec, memoryEstimateBytes: number | null): Promise<LaunchPlan> {
    const root = path.join(this.options.home, PRESTARTED_DIR);
    mkdirSync(root, { recursive: true, mode: 0o755 });
    const dropDir = mkdtempSync(path.join(root, "runner-"));
    chmodSync(dropDir, 0o755);
    try {
      const plan = await this.build({
        label: "prestarted",
        entry: this.options.entry,
        engine,
        files: [dropDir],
        memoryEstimateBytes,
      });
      if (plan.sandboxed) return { ...plan, dropDir };
      rmSync(dropDir, { recursive: true, force: true });
      return plan;
    } catch (error) {
      rmSync(dropDir, { recursive: true, force: true });
      throw error;
    }
  }

  /**
   * The plan of a model-tool worker: the same sandbox and cgroup as a runner's (it parses model files too, which may
   * be hostile), with its input files bound read-only and its output folder writable (handed to the sandbox user
   * when the daemon is root); no GPU.
   */
  async planTool(request: ToolLaunchRequest): Promise<LaunchPlan> {
    const plan = await this.build({
      label: request.label,
      entry: request.entry,
      engine: { gpu: false, cpuBackendDir: null, threads: request.threads },
      files: request.files,
      writable: request.outputDir ? [request.outputDir] : [],
      memoryEstimateBytes: request.memoryEstimateBytes,
    });
    const drop = plan.sandboxed ? (await this.options.probe).drop : null;
    if (drop && request.outputDir) chownSync(request.outputDir, drop.uid, drop.gid);
    return plan;
  }

  /**
   * Gives a prestarted runner its model: links the model's files into its folder (hard links: the same blobs, no
   * copy; only these files become visible to it), sets its cgroup's memory limit for the model's estimate and
   * places it. Returns the load spec with the paths the runner sees. Throws when the files cannot be linked (the
   * blobs on another file system): the caller then starts a fresh runner.
   */
  admit(plan: LaunchPlan, request: LaunchRequest): RunnerLoadSpec {
    let spec = request.spec;
    if (plan.dropDir) {
      const link = (from: string, name: string) => {
        const to = path.join(plan.dropDir!, name);
        linkSync(from, to);
        return to;
      };
      spec = {
        ...spec,
        modelPath: link(spec.modelPath, "model.gguf"),
        ...(spec.loraAdapters
          ? { loraAdapters: spec.loraAdapters.map((a, i) => ({ ...a, path: link(a.path, `adapter-${i}.gguf`) })) }
          : {}),
      };
    }
    if (plan.cgroup && request.memoryEstimateBytes !== null)
      plan.cgroup.limitMemory(memoryLimitFor(request.memoryEstimateBytes, this.options.memoryMargin));
    if (plan.cgroup && request.cpu) plan.cgroup.place(request.cpu);
    return spec;
  }

  private async build(request: {
    label: string;
    /** The process's entry file. */
    entry: string;
    engine: Pick<RunnerEngineSpec, "gpu" | "cpuBackendDir" | "threads">;
    /** Files and folders the process reads (bound read-only into its sandbox). */
    files: string[];
    /** Folders it writes (bound writable). */
    writable?: string[];
    memoryEstimateBytes: number | null;
    cpu?: CgroupCpuLimit | undefined;
  }): Promise<LaunchPlan> {
    const { options } = this;
    const plain = (reason: string | null, cgroup: RunnerCgroup | null = null): LaunchPlan => {
      const base = plainLaunch(request.entry, options.execArgv, this.env, reason);
      return cgroup ? { ...base, ...joining(cgroup, [base.command, ...base.args]), cgroup } : base;
    };
    if (options.mode === "off") return plain("LLMOS_SANDBOX=off");
    const probe = await options.probe;
    const support = probe.support;
    if (options.mode === "required" && support.effective !== "sandboxed")
      throw new LlmosError(
        "sandbox_unavailable",
        `cannot load ${request.label}: LLMOS_SANDBOX=required, but runners cannot be sandboxed here: ${support.reason}`,
      );
    let cgroup: RunnerCgroup | null = null;
    if (probe.cgroupHomes.length) {
      try {
        cgroup = RunnerCgroup.create(probe.cgroupHomes, RunnerCgroup.nextName(), {
          memoryBytes:
            request.memoryEstimateBytes === null
              ? null
              : memoryLimitFor(request.memoryEstimateBytes, options.memoryMargin),
          pidsMax: pidsLimitFor(request.engine.threads),
          cpus: request.cpu?.cpus ?? null,
          cpuMaxCores: request.cpu?.maxCores ?? null,
        });
      } catch (error) {
        if (options.mode === "required")
          throw new LlmosError("sandbox_unavailable", `cannot limit the runner of ${request.label}: ${String(error)}`);
        options.logger.warn(
          { err: error, model: request.label },
          "runner cgroup not made; the runner runs without limits",
        );
      }
    }
    if (!probe.bwrap) return plain(support.reason, cgroup);
    const hide = existingPaths([...ALWAYS_HIDDEN, options.home, os.homedir()]);
    // Only what exists is bound (a missing model file then fails the load with llama.cpp's clear error).
    const readOnly = existingPaths([
      ...request.files,
      ...(request.engine.cpuBackendDir ? [request.engine.cpuBackendDir] : []),
      ...(request.entry === options.entry ? this.codeRoots : codeRoots(request.entry, options.execArgv)),
    ]);
    // Run where the daemon runs when that folder is visible inside (a loader given as a bare name resolves from
    // it), else in the private /tmp.
    const cwd = process.cwd();
    const visible = !hide.some((h) => isInside(cwd, h)) || readOnly.some((r) => isInside(cwd, r));
    const rest = [
      probe.bwrap,
      ...bwrapArgs({
        bwrap: probe.bwrap,
        hide,
        readOnly,
        writable: request.writable ?? [],
        devices: request.engine.gpu ? gpuDevices() : [],
        cwd: visible ? cwd : "/tmp",
        drop: probe.drop,
        command: [process.execPath, ...options.execArgv, request.entry],
      }),
    ];
    return {
      ...(cgroup ? joining(cgroup, rest) : { command: rest[0]!, args: rest.slice(1) }),
      env: runnerEnv(this.env),
      cwd: "/",
      cgroup,
      sandboxed: true,
      reason: cgroup && support.effective === "sandboxed" ? null : support.reason,
      uid: probe.drop?.uid ?? process.getuid?.() ?? null,
    };
  }

  /** The wire status of a runner started from `plan`. */
  static status(plan: LaunchPlan): RunnerSandboxStatus {
    const cgroup = plan.cgroup;
    return {
      sandboxed: plan.sandboxed,
      reason: plan.reason,
      uid: plan.uid,
      cgroup: cgroup?.version ?? null,
      pidsLimit: cgroup?.pidsLimit ?? null,
      cpus: cgroup?.cpus() ?? null,
      cpuMaxCores: cgroup?.cpuMaxCores() ?? null,
    };
  }
}

/** A plain child process of the daemon, as without a launcher: no namespaces, no cgroup, the daemon's environment. */
export function plainLaunch(
  entry: string,
  execArgv: string[],
  env: Readonly<NodeJS.ProcessEnv>,
  reason: string | null = "no sandbox",
): LaunchPlan {
  return {
    command: process.execPath,
    args: [...execArgv, entry],
    env: { ...env },
    cwd: process.cwd(),
    cgroup: null,
    sandboxed: false,
    reason,
    uid: process.getuid?.() ?? null,
  };
}

/** `sh -c <join>` around `command`, so the runner starts inside `cgroup`. */
function joining(cgroup: RunnerCgroup, command: string[]): { command: string; args: string[] } {
  return { command: "/bin/sh", args: ["-c", JOIN_CGROUPS, "llmos-runner", ...cgroup.procsFiles, "--", ...command] };
}

/** What a sandboxed runner keeps of the daemon's environment `daemonEnv` (KEPT_ENV), with a HOME of its own. */
function runnerEnv(daemonEnv: Readonly<NodeJS.ProcessEnv>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { HOME: "/tmp", TMPDIR: "/tmp" };
  for (const [key, value] of Object.entries(daemonEnv)) if (KEPT_ENV.test(key) && value !== undefined) env[key] = value;
  return env;
}

/** GPU device nodes a runner that may use a GPU needs (NVIDIA, AMD, DRI). */
function gpuDevices(): string[] {
  let names: string[] = [];
  try {
    names = readdirSync("/dev").filter((n) => n.startsWith("nvidia"));
  } catch {
    /* no /dev */
  }
  return [...names.map((n) => `/dev/${n}`), "/dev/dri", "/dev/kfd"];
}

/**
 * The code a runner executes, bound back into the sandbox when a hidden folder covers it (an install under the
 * user's home): the installation holding the runner's entry and the engine's node_modules, node itself, and
 * loaders named by path in node's arguments.
 */
function codeRoots(entry: string, execArgv: string[]): string[] {
  const roots = [path.dirname(path.dirname(process.execPath))];
  let install = path.dirname(entry);
  for (let dir = install; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "node_modules", "node-llama-cpp"))) {
      install = dir;
      break;
    }
  }
  roots.push(install);
  for (const arg of execArgv) if (path.isAbsolute(arg)) roots.push(arg);
  return roots.map(realpathOr);
}
