/**
 * Starts runners as child processes of the daemon: where the runner's entry file is, how long a runner may show no
 * progress, and whether a launcher puts each one in a sandbox and cgroup (sandbox/runner-launcher.ts) or it runs as
 * a plain child.
 */
import { fileURLToPath } from "node:url";
import { processEnvironment } from "../config/config.js";
import { engineSpecOf, type RunnerEngineSpec, type RunnerLoadSpec } from "../runner/ipc-protocol.js";
import type { Logger } from "../telemetry/logger.js";
import { ChildProcessRunner } from "./child-process-runner.js";
import { PrestartedRunner } from "./prestarted-runner.js";
import type { PrestartedState, RunnerFactory, RunnerHandle, RunnerResources } from "./runner-handle.js";
import { plainLaunch, type RunnerLauncher } from "./sandbox/runner-launcher.js";

/** Options of the child-process runner factory. */
export interface ChildProcessRunnerOptions {
  /**
   * How long a runner with work may show no progress (no token, embedding, load or decode step) before it is killed
   * with its process group and its requests fail with `runner_stalled`. 0: never. Default 60 s.
   */
  stallTimeoutMs?: number;
  /** Starts each runner in its own sandbox and cgroup; without one, runners are plain children of the daemon. */
  launcher?: RunnerLauncher;
}

/** Default of {@link ChildProcessRunnerOptions.stallTimeoutMs}: well above the slowest legitimate step. */
export const DEFAULT_STALL_TIMEOUT_MS = 60_000;

/** The runner process's entry file (next to this module, in src/ or dist/). */
export const RUNNER_ENTRY = (() => {
  const self = fileURLToPath(import.meta.url);
  const ext = self.endsWith(".ts") ? ".ts" : ".js";
  return fileURLToPath(new URL(`../runner/main${ext}`, import.meta.url));
})();

/**
 * Starts runners as child processes, so a crash in llama.cpp never takes the daemon down; with a launcher, each
 * in its own sandbox and cgroup (see sandbox/runner-launcher.ts), else as a plain child of the daemon.
 */
export class ChildProcessRunnerFactory implements RunnerFactory {
  private readonly prestarted: PrestartedRunner;
  /** The memory estimate a prestarted runner is limited to until it is given a model. */
  private prestartBytes: number | null = null;

  constructor(
    private readonly logger: Logger,
    private readonly options: ChildProcessRunnerOptions = {},
  ) {
    this.prestarted = new PrestartedRunner(
      async (engine) => {
        const launcher = this.options.launcher;
        const plan = launcher
          ? await launcher.planPrestarted(engine, this.prestartBytes)
          : plainLaunch(RUNNER_ENTRY, process.execArgv, processEnvironment());
        return new ChildProcessRunner(
          engine,
          "prestarted",
          this.logger.child({ runner: "prestarted" }),
          plan,
          this.stallMs,
        );
      },
      (error) => this.logger.warn({ err: error }, "prestarted runner did not come up; loads start their own runners"),
    );
  }

  private get stallMs(): number {
    return this.options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  }

  async start(spec: RunnerLoadSpec, label: string, resources?: RunnerResources): Promise<RunnerHandle> {
    const request = { spec, label, memoryEstimateBytes: resources?.memoryEstimateBytes ?? null, cpu: resources?.cpu };
    const ready = await this.prestarted.take(engineSpecOf(spec));
    if (ready) {
      let admitted: RunnerLoadSpec | undefined;
      try {
        admitted = this.options.launcher?.admit(ready.launchPlan, request) ?? spec;
      } catch (error) {
        this.logger.warn({ err: error, model: label }, "prestarted runner not usable for this model; starting one");
        void ready.stop();
      }
      if (admitted) {
        ready.rename(label, this.logger.child({ runner: label }));
        ready.prestarted = true;
        await ready.load(admitted);
        return ready;
      }
    }
    const launcher = this.options.launcher;
    const plan = launcher
      ? await launcher.plan(request)
      : plainLaunch(RUNNER_ENTRY, process.execArgv, processEnvironment());
    const runner = new ChildProcessRunner(spec, label, this.logger.child({ runner: label }), plan, this.stallMs);
    await runner.load(spec);
    return runner;
  }

  prestart(engine: RunnerEngineSpec | null, memoryEstimateBytes: number | null): void {
    this.prestartBytes = memoryEstimateBytes;
    this.prestarted.keep(engine);
  }

  prestartedState(): PrestartedState {
    return this.prestarted.state();
  }

  prestartedStartMs(): number | null {
    return this.prestarted.startMs();
  }

  onPrestartedChange(listener: () => void): () => void {
    return this.prestarted.onChange(listener);
  }
}
