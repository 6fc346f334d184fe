/**
 * A model-tool worker process seen from the daemon: starts `runner/model-tool-worker` (sandboxed and limited like a
 * runner when the launcher can: it parses model files, which may be hostile), starts one job, streams its progress,
 * and resolves with its result. `kill()` ends the process at once (SIGKILL): llama.cpp's quantizer cannot be
 * interrupted, and a killed worker leaves nothing but the files the caller owns and deletes.
 *
 * A job that writes a file (quantize, imatrix) writes it into a folder of its own next to the output path the caller
 * gave, the only place the sandbox lets it write; once the worker has exited, the file is moved to that path if it
 * is a plain file (not a link a hostile worker made to something else), and the folder is removed. While it runs,
 * the folder may hold no more than the job allows (`outputLimitBytes`, then what `onEstimate` returns).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, lstatSync, mkdtempSync, readdirSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { processEnvironment } from "../config/config.js";
import { LlmosError } from "../errors.js";
import type { DaemonToWorker, ToolFailureKind, ToolJob, WorkerToDaemon } from "../runner/tool-ipc-protocol.js";
import type { Logger } from "../telemetry/logger.js";
import { LogBudget, logThroughBudget } from "./log-budget.js";
import { killProcessGroup } from "./process-group.js";
import { plainLaunch, type LaunchPlan, type RunnerLauncher } from "./sandbox/runner-launcher.js";

/** The worker's entry file (next to this module, in src/ or dist/). */
export const TOOL_WORKER_ENTRY = (() => {
  const ext = fileURLToPath(import.meta.url).endsWith(".ts") ? ".ts" : ".js";
  return fileURLToPath(new URL(`../runner/model-tool-worker${ext}`, import.meta.url));
})();

/** Callbacks of a running job. */
export interface ToolWorkerHooks {
  /** Progress of the job (tensors for quantize, chunks for imatrix and eval). */
  onProgress?: (p: Extract<WorkerToDaemon, { type: "progress" }>) => void;
  /**
   * Quantize only: the output's size from llama.cpp's dry run, before anything is written. Throw to refuse (the
   * worker is killed and the error is the job's); return the most bytes the output may take from then on.
   */
  onEstimate?: (bytes: number, tensors: number) => Promise<number> | number;
  /**
   * The most bytes the worker may write (its output folder, all files) until its estimate; default 0. A worker
   * that writes more is killed: a worker a hostile model file took over could otherwise fill the store's disk.
   */
  outputLimitBytes?: number;
  /** The job's memory reservation (RAM bytes): the worker's cgroup limit is set from it. */
  memoryBytes?: number;
}

/** The error code of each failure kind a worker reports. */
const CODES: Record<ToolFailureKind, LlmosError["code"]> = {
  imatrix_required: "imatrix_required",
  imatrix_mismatch: "imatrix_mismatch",
  requantize_not_allowed: "requantize_not_allowed",
  invalid_request: "invalid_request",
  load_failed: "model_load_failed",
  failed: "internal",
};

/** Options of {@link ToolWorkers}. */
export interface ToolWorkersOptions {
  /** Starts each worker in a sandbox and cgroup (as runners are); without one, workers are plain children. */
  launcher?: RunnerLauncher;
  /** The worker's entry file (tests give a hostile one). Default: runner/model-tool-worker. */
  entry?: string;
}

/** Starts worker processes; one per job. */
export class ToolWorkers {
  private readonly entry: string;

  constructor(
    private readonly logger: Logger,
    private readonly options: ToolWorkersOptions = {},
  ) {
    this.entry = options.entry ?? TOOL_WORKER_ENTRY;
  }

  /** Runs `job` in a new worker. Aborting `signal` kills the worker and rejects with `client_closed`. */
  async run<T>(job: ToolJob, hooks: ToolWorkerHooks = {}, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    const output = job.kind === "eval" ? null : job.output;
    // The worker's own output folder, beside the output (the same file system, so the result is moved, not copied).
    const outputDir = output ? mkdtempSync(path.join(path.dirname(output), "worker-")) : null;
    const written = outputDir ? path.join(outputDir, path.basename(output!)) : null;
    try {
      const plan = await this.plan(job, outputDir, hooks.memoryBytes ?? null);
      const value = await this.spawnJob<T>(
        plan,
        outputDir,
        written && job.kind !== "eval" ? { ...job, output: written } : job,
        hooks,
        signal,
      );
      if (written) adoptOutput(written, output!, job.kind);
      return value;
    } finally {
      if (outputDir) rmSync(outputDir, { recursive: true, force: true });
    }
  }

  private plan(job: ToolJob, outputDir: string | null, memoryBytes: number | null): Promise<LaunchPlan> {
    const launcher = this.options.launcher;
    if (!launcher) return Promise.resolve(plainLaunch(this.entry, process.execArgv, processEnvironment()));
    return launcher.planTool({
      label: `the ${job.kind} job`,
      entry: this.entry,
      files: inputsOf(job),
      outputDir,
      threads: job.threads,
      memoryEstimateBytes: memoryBytes,
    });
  }

  private spawnJob<T>(
    plan: LaunchPlan,
    outputDir: string | null,
    job: ToolJob,
    hooks: ToolWorkerHooks,
    signal?: AbortSignal,
  ): Promise<T> {
    // Detached: the worker (or the sandbox around it) leads its own process group, which a kill takes down whole.
    const child: ChildProcess = spawn(plan.command, plan.args, {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      serialization: "advanced",
      env: plan.env,
      cwd: plan.cwd,
      detached: true,
    });
    const log = this.logger.child({ worker: job.kind, pid: child.pid, sandboxed: plan.sandboxed });
    const logBudget = new LogBudget();
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const exited = new Promise<void>((done) => child.once("exit", () => done()));
      // Settles once the process is gone, so the caller may delete the files it was writing.
      const finish = (error: unknown, value?: T) => {
        if (settled) return;
        settled = true;
        clearInterval(watch);
        signal?.removeEventListener("abort", onAbort);
        if (child.exitCode === null && child.signalCode === null) killProcessGroup(child.pid);
        const gone = child.pid === undefined ? Promise.resolve() : exited;
        void gone.then(() => {
          const oomKilled = (plan.cgroup?.oomKills() ?? 0) > 0;
          void plan.cgroup?.remove();
          // A last look once it is gone: a worker may write fast and exit between two looks.
          if (!error && overLimit()) error = tooMuch();
          if (oomKilled && !(error instanceof LlmosError && error.code === "client_closed"))
            reject(new LlmosError("insufficient_memory", `the ${job.kind} worker went over its memory limit`));
          else if (error) reject(error);
          else resolve(value as T);
        });
      };
      const onAbort = () => finish(new LlmosError("client_closed", `${job.kind} cancelled`));
      let outputLimit = hooks.outputLimitBytes ?? 0;
      let estimated = false;
      const overLimit = () => outputDir !== null && folderBytes(outputDir) > outputLimit;
      const tooMuch = () =>
        new LlmosError("internal", `the ${job.kind} worker wrote more than the ${outputLimit} bytes its job allows`);
      const watch = setInterval(() => {
        if (overLimit()) finish(tooMuch());
      }, OUTPUT_WATCH_MS);
      signal?.addEventListener("abort", onAbort, { once: true });
      if (signal?.aborted) onAbort();
      const post = (m: DaemonToWorker) => {
        if (child.connected) child.send(m);
      };
      child.on("message", (m: WorkerToDaemon) => {
        switch (m.type) {
          case "ready":
            return post({ type: "start", job });
          case "estimate":
            // One estimate of whole bytes and tensors: anything else is a worker that does not follow the protocol.
            if (estimated || !isCount(m.bytes) || !isCount(m.tensors))
              return finish(new LlmosError("internal", `the ${job.kind} worker sent an invalid estimate; stopped`));
            estimated = true;
            void (async () => {
              try {
                if (hooks.onEstimate) outputLimit = await hooks.onEstimate(m.bytes, m.tensors);
                post({ type: "proceed" });
              } catch (error) {
                finish(error);
              }
            })();
            return;
          case "progress":
            return hooks.onProgress?.(m);
          case "result":
            return finish(undefined, m.value as T);
          case "error":
            return finish(new LlmosError(CODES[m.kind], m.message, m.details));
          case "log":
            return logThroughBudget(logBudget, log, {}, m.level, m.message);
        }
      });
      child.on("error", (error) => finish(new LlmosError("internal", `${job.kind} worker: ${error.message}`)));
      child.on("exit", (code, sig) =>
        finish(new LlmosError("internal", `the ${job.kind} worker stopped unexpectedly (${sig ?? `exit ${code}`})`)),
      );
    });
  }
}

function isCount(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) >= 0;
}

/** How often a worker's output folder is measured against its limit (ms). */
const OUTPUT_WATCH_MS = 200;

/** More entries than a worker that writes one file ever makes: the folder counts as over any limit. */
const MAX_OUTPUT_ENTRIES = 1000;

/** Bytes of the files in `dir` and below it (links not followed), 0 once it is gone. */
function folderBytes(dir: string): number {
  let total = 0;
  let entries = 0;
  const pending = [dir];
  for (let current = pending.pop(); current !== undefined; current = pending.pop()) {
    let names: string[];
    try {
      names = readdirSync(current);
    } catch {
      continue; // gone meanwhile
    }
    for (const name of names) {
      if (++entries > MAX_OUTPUT_ENTRIES) return Infinity;
      const file = path.join(current, name);
      try {
        const stats = lstatSync(file);
        if (stats.isDirectory()) pending.push(file);
        else total += stats.size;
      } catch {
        // removed meanwhile
      }
    }
  }
  return total;
}

/** The files a job reads. */
function inputsOf(job: ToolJob): string[] {
  switch (job.kind) {
    case "quantize":
      return [job.input, ...(job.imatrixPath ? [job.imatrixPath] : [])];
    case "imatrix":
      return [job.modelPath];
    case "eval":
      return [job.modelPath, ...(job.basePath ? [job.basePath] : [])];
  }
}

/**
 * Moves the file a worker wrote to where the caller expects it, if it is a plain file of its own: a symbolic link,
 * or a hard link to a file it could read, would hand the daemon something other than what llama.cpp wrote.
 */
function adoptOutput(written: string, output: string, kind: string): void {
  let stats;
  try {
    stats = lstatSync(written);
  } catch {
    throw new LlmosError("internal", `the ${kind} worker reported success but wrote no file`);
  }
  if (!stats.isFile() || stats.nlink !== 1)
    throw new LlmosError("internal", `the ${kind} worker's output is not a plain file of its own; refused`);
  // A root daemon's worker ran as the sandbox user: the file becomes the daemon's before it joins the store, with
  // the mode the store gives its files (whatever bits the worker set).
  const uid = process.getuid?.();
  if (uid === 0 && stats.uid !== 0) chownSync(written, 0, process.getgid?.() ?? 0);
  chmodSync(written, 0o644);
  renameSync(written, output);
}
