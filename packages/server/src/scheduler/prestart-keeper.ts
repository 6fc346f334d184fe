/**
 * Applies decidePrestart (prestart.ts): tells the runner factory to keep a runner started ahead of the next load
 * with the loader's engine settings, or none, and publishes the memory it takes (`llmos_memory_bytes{kind=
 * "prestarted"}`). Without `LLMOS_PRESTART` or a factory that can, it does nothing and the snapshot shows none.
 */
import type { RunnerFactory } from "../runtime/runner-handle.js";
import type { Metrics } from "../telemetry/metrics.js";
import type { Loader } from "./loader.js";
import { decidePrestart } from "./prestart.js";
import type { SchedulerSnapshot } from "./snapshot.js";

export class PrestartKeeper {
  constructor(
    private readonly runners: RunnerFactory,
    private readonly loader: Loader,
    private readonly metrics: Metrics,
    private readonly enabled: boolean,
  ) {}

  /** What the snapshot shows of it (absent: none is ever kept). */
  view(): SchedulerSnapshot["prestart"] {
    const state = this.runners.prestartedState;
    if (!this.enabled || !state || !this.runners.prestart) return undefined;
    const startMs = this.runners.prestartedStartMs?.() ?? null;
    return { bytes: this.loader.overheadBytes(), state: state.call(this.runners), startMs };
  }

  /** Decides over `snapshot` and applies the decision. */
  apply(snapshot: SchedulerSnapshot, closing: boolean): void {
    if (!this.enabled || !this.runners.prestart) return;
    const decision = decidePrestart(snapshot, closing);
    const bytes = this.loader.overheadBytes();
    if (decision !== "leave") this.runners.prestart(decision === "start" ? this.loader.engineSpec() : null, bytes);
    this.metrics.memoryBytes.set({ kind: "prestarted" }, this.runners.prestartedState?.() === "none" ? 0 : bytes);
  }

  /** Stops the one kept, if any (shutdown). */
  stop(): void {
    this.runners.prestart?.(null, null);
  }
}
