import type { LoadedModel, PromptCacheSummary } from "@llmos/protocol";
import type { RunnerStatsReply } from "../runner/ipc-protocol.js";
import { runnerOf, sizingOf, specOf, type ModelStateKind } from "./model-lifecycle.js";
import type { ModelEntry } from "./model-entry.js";

/**
 * One model as `GET /api/ps` shows it: llmos' native fields (slots, queue order, memory estimate and measured RSS,
 * engine counters) plus the fields Ollama's clients read (`model`, `size`, `size_vram`, `expires_at`, ...).
 */
export function describeEntry(
  entry: ModelEntry,
  stats: RunnerStatsReply | undefined,
  at: {
    engine: string;
    now: number;
    expiresAt: number | null;
    cpuPinned: boolean;
    keptBy: string;
    keepReason?: string;
  },
): LoadedModel & Record<string, unknown> {
  const spec = specOf(entry.state);
  const sizing = sizingOf(entry.state);
  const runner = runnerOf(entry.state);
  const engineStats = stats?.engine;
  if (stats) entry.measuredRssBytes = stats.rssBytes;
  const rss = entry.measuredRssBytes;
  const forever = entry.pinned || entry.keepAliveMs < 0;
  const expires = forever ? null : at.expiresAt !== null ? new Date(at.expiresAt).toISOString() : null;
  const now = at.now;
  const demand = entry.demand();
  const cpu = entry.cpu;
  return {
    name: entry.name,
    model: entry.name,
    digest: spec?.digest ?? "",
    size: entry.reservedBytes,
    size_vram: entry.vramBytes,
    details: spec?.details,
    // Ollama shows a far-future time for models that never expire, and "now + keep-alive" for busy ones.
    expires_at:
      expires ?? (forever ? "2318-01-01T00:00:00Z" : new Date(now + Math.max(0, entry.keepAliveMs)).toISOString()),
    context_length: entry.contextSize,
    runnerPid: runner?.pid ?? null,
    state: publicState(entry.kind),
    contextSize: entry.contextSize,
    kvCacheType: sizing?.kvCacheType ?? { k: "f16", v: "f16" },
    slots: entry.slots,
    slotsBusy: entry.busy,
    queued: entry.queue.size,
    queueByTenant: entry.queue.tenants(),
    // Service order of queued requests (first 100): position, tenant, priority and how long each has waited.
    queue: entry.queue
      .snapshot()
      .slice(0, 100)
      .map((w, i) => ({ position: i + 1, tenant: w.tenant, priority: w.priority, waitingMs: now - w.enqueuedAt })),
    pinned: entry.pinned,
    keepAliveMs: entry.keepAliveMs,
    expiresAt: expires,
    loadedFor: entry.loadedFor,
    keptBy: at.keptBy,
    ...(at.keepReason ? { keepReason: at.keepReason } : {}),
    lastUsedAt: new Date(entry.lastUsed).toISOString(),
    memory: {
      estimatedBytes: entry.reservedBytes,
      kvCacheBytes: sizing?.estimate.kvCache ?? null,
      rssBytes: rss ?? null,
      vramBytes: sizing?.offload ? entry.vramBytes : null,
      limitBytes: runner?.memoryLimitBytes ?? null,
      // The cgroup's peak (everything the runner's processes were charged), else the runner's own peak RSS.
      peakBytes: runner?.peakMemoryBytes() ?? stats?.peakRssBytes ?? null,
      estimate: sizing?.estimate,
    },
    gpuLayers: sizing?.offload?.gpuLayers ?? 0,
    engine: runner?.engine ?? at.engine,
    cpuBackend: runner?.cpuBackend ?? null,
    sandbox: runner?.sandbox ?? null,
    loadMs: runner ? Math.round(runner.loadMs) : null,
    cpu: {
      threads: cpu?.threads ?? 0,
      cpus: cpu && at.cpuPinned && cpu.threads > 0 ? [...cpu.cpus] : null,
      shared: cpu?.shared ?? false,
      minThreads: entry.minThreads,
      demand: demand.interactive + demand.batch,
      appliedAt: cpu?.appliedAt != null ? new Date(cpu.appliedAt).toISOString() : null,
    },
    // Field by field: the engine's per-slot list belongs in promptCache, not in the counters.
    stats: {
      decodeBatches: engineStats?.decodeBatches ?? 0,
      multiSequenceBatches: engineStats?.multiSequenceBatches ?? 0,
      maxSequencesInBatch: engineStats?.maxSequencesInBatch ?? 0,
      tokensGenerated: engineStats?.tokensGenerated ?? 0,
      promptTokens: engineStats?.promptTokens ?? 0,
      contendedBatches: engineStats?.contendedBatches ?? 0,
      cachedPromptTokens: engineStats?.cachedPromptTokens ?? 0,
      prefixCopies: engineStats?.prefixCopies ?? 0,
    },
    promptCache: promptCacheOf(stats, entry.slots),
  } as LoadedModel & Record<string, unknown>;
}

/** The lifecycle state as `/api/ps` names it: the steps of a load are all `loading`. */
function publicState(kind: ModelStateKind): LoadedModel["state"] {
  switch (kind) {
    case "loading":
    case "placing":
    case "starting":
      return "loading";
    case "ready":
    case "draining":
      return kind;
    default:
      return "unloading";
  }
}

/** The runner's prompt cache: hit rate since load and what each slot holds (empty slots before the runner answers). */
function promptCacheOf(stats: RunnerStatsReply | undefined, slots: number): PromptCacheSummary {
  const hit = stats?.engine.cachedPromptTokens ?? 0;
  const miss = stats?.engine.promptTokens ?? 0;
  return {
    hitTokens: hit,
    missTokens: miss,
    hitRate: hit + miss > 0 ? hit / (hit + miss) : null,
    prefixCopies: stats?.engine.prefixCopies ?? 0,
    slots:
      stats?.engine.slots?.map((s) => ({ slot: s.id, cachedTokens: s.cachedTokens, busy: s.busy })) ??
      Array.from({ length: slots }, (_, slot) => ({ slot, cachedTokens: 0, busy: false })),
  };
}
