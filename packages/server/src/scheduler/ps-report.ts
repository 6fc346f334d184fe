/**
 * What the scheduler reports about itself, read-only: `GET /api/ps` (every model as ps-view.ts describes it, with
 * its runner's counters, the queue, the CPUs, recent OOM kills and the keep-alive policy) and the runners' decode
 * steps for `/metrics`. A runner that does not answer its stats within 2 s is shown without them.
 */
import type { KeepPolicyName, LoadedModel, PsResponse } from "@llmos/protocol";
import type { RunnerStatsReply } from "../runner/ipc-protocol.js";
import { sleep, type Clock } from "./clock.js";
import type { SchedulerOptions } from "./context.js";
import { expiryOf } from "./decisions.js";
import type { Executor } from "./executor.js";
import type { ModelEntry } from "./model-entry.js";
import type { ModelTable } from "./model-table.js";
import type { OomHistory } from "./oom-history.js";
import type { SchedulingPolicy } from "./policy.js";
import { describeEntry } from "./ps-view.js";
import type { SchedulerSnapshot } from "./snapshot.js";

export interface PsReportParts {
  table: ModelTable;
  options: SchedulerOptions;
  executor: Executor;
  policy: SchedulingPolicy;
  /** What `/api/ps` says about the policy, e.g. that it fell back from the configured one (and why). */
  policyNote: { configured: KeepPolicyName; warning?: string } | undefined;
  ooms: OomHistory;
  clock: Clock;
  snapshot: () => SchedulerSnapshot;
}

export class PsReport {
  constructor(private readonly parts: PsReportParts) {}

  /** Loaded models with slots, queue, memory and engine counters (`GET /api/ps`). */
  async ps(): Promise<PsResponse> {
    const { table, options, executor, policy, policyNote: note, ooms } = this.parts;
    const entries = table.named();
    const stats = await Promise.all(entries.map((e) => this.statsOf(e)));
    const models = entries.map((e, i) => this.describe(e, stats[i]));
    return {
      models,
      queue: { total: table.queuedTotal(), capacity: options.maxQueueTotal },
      cpu: {
        cpus: [...options.cpus],
        maxThreadsPerRunner: options.threads,
        allottedThreads: table.all().reduce((n, e) => n + (e.cpu?.threads ?? 0), 0),
        placement: executor.cpu.placement.kind,
      },
      oomKills: ooms.recent(),
      policy: {
        name: policy.name as KeepPolicyName,
        configured: note?.configured ?? (policy.name as KeepPolicyName),
        ...(note?.warning ? { warning: note.warning } : {}),
      },
    };
  }

  /** Decode steps of each loaded runner, and how many of them ran under contention (for `/metrics`). */
  async runnerSteps(): Promise<Array<{ model: string; decodeBatches: number; contendedBatches: number }>> {
    const entries = this.parts.table.named();
    const stats = await Promise.all(entries.map((e) => this.statsOf(e)));
    return entries.flatMap((e, i) => {
      const s = stats[i]?.engine;
      return s ? [{ model: e.name, decodeBatches: s.decodeBatches, contendedBatches: s.contendedBatches }] : [];
    });
  }

  /** One model as `/api/ps` shows it, with why it is kept and until when. */
  describe(entry: ModelEntry, stats: RunnerStatsReply | undefined): LoadedModel & Record<string, unknown> {
    const { policy, options, executor } = this.parts;
    const snapshot = this.parts.snapshot();
    const view = entry.view(snapshot.now);
    const expiresAt = expiryOf(view, snapshot, policy);
    const keptBy = entry.loadedFor === "pin" ? "pin" : entry.keepAliveExplicit ? "keep_alive" : policy.name;
    const keepReason = keptBy === policy.name ? (policy.explain?.(view, snapshot) ?? policy.name) : undefined;
    return describeEntry(entry, stats, {
      engine: options.engine,
      now: snapshot.now,
      expiresAt,
      cpuPinned: executor.cpu.placement.enforced,
      keptBy,
      ...(keepReason ? { keepReason } : {}),
    });
  }

  /** The runner's counters, or undefined when it is not ready or does not answer within 2 s. */
  async statsOf(entry: ModelEntry): Promise<RunnerStatsReply | undefined> {
    const state = entry.state;
    if (state.kind !== "ready") return undefined;
    try {
      return await Promise.race([state.runner.stats(), sleep(this.parts.clock, 2000).then(() => undefined)]);
    } catch {
      return undefined;
    }
  }
}
