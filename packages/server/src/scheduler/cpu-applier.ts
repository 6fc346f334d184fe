/**
 * Applies the CPU decision (cpu-allotment.ts): records each runner's allotment, sends the runners whose thread
 * count (or contention) changed a `setCpu` request, which they apply between two decode steps, then has the CPU
 * placement pin the runner to its CPU set. A runner that goes idle gets no message: its threadpool sleeps on its
 * own when its last sequence ends, and it gets its next allotment before its next request's first decode (IPC
 * messages to a runner arrive in order). One timer re-decides when a growth held back by the hysteresis is due.
 */
import type { CpuPlacement } from "../runtime/cpu-placement.js";
import type { SchedulerContext } from "./context.js";
import type { CpuAllotmentDecision, CpuPlan } from "./cpu-allotment.js";
import type { ModelEntry, RunnerCpuState } from "./model-entry.js";

export class CpuApplier {
  private recheckAt: number | null = null;
  private cancelRecheck: (() => void) | undefined;
  /** Per runner, the allotment requests in flight, so they are applied (and pinned) in the order decided. */
  private readonly chains = new WeakMap<ModelEntry, Promise<void>>();

  constructor(
    private readonly ctx: SchedulerContext,
    readonly placement: CpuPlacement,
  ) {
    ctx.metrics.cpuCores.set(ctx.options.cpus.length);
  }

  /** A runner started for `entry` with `threads` decode threads: it is idle until its first request. */
  attach(entry: ModelEntry, threads: number): void {
    const now = this.ctx.clock.now();
    entry.cpu = {
      threads: 0,
      cpus: [],
      shared: false,
      changedAt: now,
      decidedAt: now,
      version: 0,
      appliedAt: now,
      runnerThreads: threads,
      runnerShared: false,
      placedCpus: null,
    };
    this.ctx.metrics.runnerThreads.set({ model: entry.name }, 0);
  }

  /** The runner of `entry` is gone: its allotment no longer counts. */
  detach(entry: ModelEntry): void {
    entry.cpu = null;
    this.ctx.metrics.runnerThreads.remove({ model: entry.name });
  }

  apply(plan: CpuPlan): void {
    for (const decision of plan.allotments) {
      const entry = this.ctx.table.get(decision.model);
      if (entry?.cpu && entry.runner) this.applyOne(entry, entry.cpu, decision);
    }
    this.armRecheck(plan.recheckAt);
  }

  /** Settles once every allotment sent so far has been applied (or failed) by its runner. */
  async applied(): Promise<void> {
    await Promise.all(this.ctx.table.all().map((entry) => this.chains.get(entry)));
  }

  /** Stops the recheck timer (shutdown). */
  dispose(): void {
    this.cancelRecheck?.();
    this.cancelRecheck = undefined;
    this.recheckAt = null;
  }

  private applyOne(entry: ModelEntry, cpu: RunnerCpuState, d: CpuAllotmentDecision): void {
    const sameCpus = cpu.cpus.length === d.cpus.length && cpu.cpus.every((c, i) => c === d.cpus[i]);
    if (cpu.threads === d.threads && cpu.shared === d.shared && sameCpus) return;
    const { clock, events, metrics } = this.ctx;
    const now = clock.now();
    if (cpu.threads !== d.threads) cpu.changedAt = now;
    cpu.threads = d.threads;
    cpu.cpus = d.cpus;
    cpu.shared = d.shared;
    cpu.decidedAt = now;
    const version = ++cpu.version;
    metrics.runnerThreads.set({ model: entry.name }, d.threads);
    events.emit({ type: "model.cpu", model: entry.name, at: now, threads: d.threads, cpus: d.cpus, shared: d.shared });
    const send = d.threads > 0 && (d.threads !== cpu.runnerThreads || d.shared !== cpu.runnerShared);
    const place = d.threads > 0 && this.placement.enforced;
    if (!send && !place) {
      cpu.appliedAt = now;
      return;
    }
    cpu.appliedAt = null;
    // What the runner will have once the requests sent to it are applied (they are applied in order).
    if (send) {
      cpu.runnerThreads = d.threads;
      cpu.runnerShared = d.shared;
    }
    const previous = this.chains.get(entry) ?? Promise.resolve();
    const next = previous.then(() => this.deliver(entry, cpu, d, send, version));
    this.chains.set(
      entry,
      next.catch((error: unknown) => {
        // A runner that went away fails its requests on its own; anything else is worth a line in the log.
        if (entry.runner && !entry.runner.exited)
          this.ctx.logger.warn({ err: error, model: entry.name }, "could not apply a CPU allotment");
      }),
    );
  }

  private async deliver(
    entry: ModelEntry,
    cpu: RunnerCpuState,
    d: CpuAllotmentDecision,
    send: boolean,
    version: number,
  ): Promise<void> {
    const runner = entry.runner;
    if (!runner || runner.exited || entry.cpu !== cpu) return;
    if (send) await runner.setCpu({ threads: d.threads, shared: d.shared });
    // Pinned after the thread change, so threads the runner created for it are pinned too.
    const pid = runner.pid;
    const target = this.placement.enforced ? d.cpus : null;
    if (pid !== null && target && !sameSet(target, cpu.placedCpus)) {
      await this.placement.apply(pid, target);
      cpu.placedCpus = [...target];
    }
    const { clock, events, metrics } = this.ctx;
    const now = clock.now();
    if (cpu.version !== version) return; // a later decision is on its way
    cpu.appliedAt = now;
    const latencyMs = now - cpu.decidedAt;
    metrics.cpuAllotmentApply.observe(latencyMs / 1000);
    events.emit({ type: "model.cpu_applied", model: entry.name, at: now, threads: d.threads, latencyMs });
  }

  private armRecheck(at: number | null): void {
    if (at === this.recheckAt) return;
    this.cancelRecheck?.();
    this.cancelRecheck = undefined;
    this.recheckAt = at;
    if (at === null) return;
    this.cancelRecheck = this.ctx.clock.setTimer(
      () => {
        this.recheckAt = null;
        this.cancelRecheck = undefined;
        this.ctx.reconcile();
      },
      Math.max(0, at - this.ctx.clock.now()),
    );
  }
}

function sameSet(a: readonly number[], b: readonly number[] | null): boolean {
  return b !== null && a.length === b.length && a.every((c, i) => c === b[i]);
}
