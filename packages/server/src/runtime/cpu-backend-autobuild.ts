/**
 * Native speed by default: on a new install (`LLMOS_CPU_BACKEND=auto`, llama-ffi, Linux) the daemon builds llama.cpp's
 * CPU backend for this machine in the background, the way `llmos build-cpu-backend` does, when git, cmake and a C++
 * compiler are there. Runners started after the build is installed use it (the daemon checks the folder at each
 * runner start); requests never wait for it, and the build tools run at the lowest priority so they take only
 * the CPU the runners leave. One build per daemon. A failed build is recorded in `failureFile` and not retried
 * automatically (not at the next start either) until the installed libraries change or a build run by hand
 * succeeds; its error shows in `GET /api/system`, `llmos ps` and the log.
 *
 * `decideAutoBuild` is the decision over what is on disk; the class applies it and follows the build's states.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { CpuBackendBuildStatus } from "@llmos/protocol";
import type { Logger } from "../telemetry/logger.js";

/** One progress report of the build. */
export interface CpuBackendBuildStep {
  phase: string;
  percent?: number;
  message: string;
}

/** What the daemon gives this module of the builder (engine/llama-ffi/cpu-backend-build.ts; a fake in tests). */
export interface CpuBackendBuilder {
  /** Whether `dir` holds a matching build, and the key of the libraries a build now would be made for. */
  inspect(dir: string): { usable: boolean; reason: string | null; key: string };
  /** The first missing build tool, or null. */
  missingTool(): Promise<string | null>;
  /** Build and install into `dir`; rejects on failure (nothing installed) or when `signal` aborts. */
  build(opts: {
    dir: string;
    onProgress: (step: CpuBackendBuildStep) => void;
    signal: AbortSignal;
  }): Promise<{ seconds: number }>;
}

/** A failed build, as recorded on disk. */
export interface RecordedFailure {
  key: string;
  error: string;
  at: string;
}

export interface AutoBuildInput {
  /** LLMOS_CPU_BACKEND_BUILD. */
  setting: "auto" | "off";
  /** Why a built-here backend is not this daemon's business (another LLMOS_CPU_BACKEND, engine, platform), or null. */
  notApplicable: string | null;
  installed: { usable: boolean; reason: string | null; key: string };
  missingTool: string | null;
  failure: RecordedFailure | null;
}

/** The one-line hint of a daemon that does not build the backend itself. */
export const BUILD_HINT =
  "`llmos build-cpu-backend` compiles llama.cpp's CPU backend for this machine (about a minute): prompts on F16 models run up to 2x faster";

/** What to do at start-up: report a state (logged when it is a hint or a failure), or build. */
export function decideAutoBuild(input: AutoBuildInput): CpuBackendBuildStatus | "build" {
  if (input.notApplicable) return { state: "off", message: input.notApplicable };
  if (input.installed.usable) return { state: "ready", message: "a CPU backend built on this machine is installed" };
  if (input.setting === "off") return { state: "off", message: BUILD_HINT };
  if (input.failure && input.failure.key === input.installed.key)
    return { state: "failed", message: failedMessage(input.failure.error), finishedAt: input.failure.at };
  if (input.missingTool)
    return {
      state: "unavailable",
      message: `${BUILD_HINT} (needs git, cmake and g++; ${input.missingTool} is missing, so the daemon cannot build it)`,
    };
  return "build";
}

function failedMessage(error: string): string {
  return `the background build of the CPU backend failed (${error.split("\n")[0]}); it is not retried: run \`llmos build-cpu-backend\` to see why`;
}

export class CpuBackendAutoBuild {
  private current: CpuBackendBuildStatus = { state: "off", message: "not decided yet" };
  private started = false;
  private running: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private lastLoggedPercent = -1;

  constructor(
    private readonly opts: {
      builder: CpuBackendBuilder;
      /** The install folder (`<home>/engine/ggml-cpu`); a failed build is recorded beside it. */
      dir: string;
      setting: "auto" | "off";
      notApplicable: string | null;
      logger: Logger;
    },
  ) {}

  /** The state for `/api/system` and `/api/ps`. */
  status(): CpuBackendBuildStatus {
    return { ...this.current };
  }

  /** Decide and, when there is a build to make, start it in the background. Idempotent. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const { builder, setting, notApplicable, logger } = this.opts;
    if (notApplicable) {
      this.current = { state: "off", message: notApplicable };
      return;
    }
    let installed: ReturnType<CpuBackendBuilder["inspect"]>;
    let decision: CpuBackendBuildStatus | "build";
    try {
      installed = builder.inspect(this.opts.dir);
      const wouldBuild = !installed.usable && setting === "auto";
      decision = decideAutoBuild({
        setting,
        notApplicable,
        installed,
        missingTool: wouldBuild ? await builder.missingTool() : null,
        failure: wouldBuild ? this.readFailure() : null,
      });
    } catch (error) {
      this.current = { state: "off", message: `cannot tell whether to build: ${(error as Error).message}` };
      logger.warn({ err: error }, "could not inspect the CPU backend built here");
      return;
    }
    if (decision !== "build") {
      this.current = decision;
      if (decision.state !== "ready") logger.info(decision.message);
      return;
    }
    this.running = this.build(installed.key).finally(() => (this.running = undefined));
  }

  /** Resolves when no build is running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Stop a running build (nothing is installed) and wait for its tools to exit. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.idle();
  }

  private async build(key: string): Promise<void> {
    const { builder, logger } = this.opts;
    const startedAt = new Date().toISOString();
    this.current = { state: "building", phase: "probe", message: "starting", startedAt };
    logger.info("building llama.cpp's CPU backend for this machine in the background (low priority)");
    try {
      const { seconds } = await builder.build({
        dir: this.opts.dir,
        signal: this.abort.signal,
        onProgress: (step) => this.onProgress(step, startedAt),
      });
      this.current = {
        state: "ready",
        message: `built on this machine in ${Math.round(seconds)} s; models loaded from now on use it`,
        startedAt,
        finishedAt: new Date().toISOString(),
      };
      rmSync(this.failureFile, { force: true });
      logger.info(`CPU backend built in ${Math.round(seconds)} s: models loaded from now on use it`);
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      const at = new Date().toISOString();
      if (this.abort.signal.aborted) {
        this.current = { state: "off", message: "the background build was stopped", startedAt, finishedAt: at };
        return;
      }
      this.recordFailure({ key, error: text, at });
      this.current = { state: "failed", message: failedMessage(text), startedAt, finishedAt: at };
      logger.error({ err: error }, "the background build of the CPU backend failed; it is not retried automatically");
    }
  }

  private onProgress(step: CpuBackendBuildStep, startedAt: string): void {
    const previous = this.current;
    this.current = {
      state: "building",
      phase: step.phase,
      ...(step.percent !== undefined ? { percent: step.percent } : {}),
      message: step.message,
      startedAt,
    };
    // The log gets each phase and the compile step in quarters, not every file.
    const quarter = step.percent === undefined ? -1 : Math.floor(step.percent / 25) * 25;
    if (previous.phase !== step.phase || quarter > this.lastLoggedPercent) {
      this.lastLoggedPercent = step.phase === "compile" ? quarter : -1;
      this.opts.logger.info(
        { phase: step.phase, ...(step.percent !== undefined ? { percent: step.percent } : {}) },
        `CPU backend build: ${step.phase}${step.percent !== undefined ? ` ${step.percent}%` : ""}`,
      );
    }
  }

  /** Where a failed build is recorded: beside the install folder, which a build replaces as a whole. */
  get failureFile(): string {
    return `${this.opts.dir}.build-failed.json`;
  }

  private readFailure(): RecordedFailure | null {
    if (!existsSync(this.failureFile)) return null;
    try {
      const f = JSON.parse(readFileSync(this.failureFile, "utf8")) as RecordedFailure;
      return typeof f.key === "string" && typeof f.error === "string" ? f : null;
    } catch {
      return null;
    }
  }

  private recordFailure(failure: RecordedFailure): void {
    try {
      mkdirSync(dirname(this.failureFile), { recursive: true });
      writeFileSync(this.failureFile, `${JSON.stringify(failure, null, 2)}\n`);
    } catch (error) {
      this.opts.logger.warn({ err: error }, "could not record the failed CPU backend build");
    }
  }
}
