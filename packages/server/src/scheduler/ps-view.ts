import type { LoadedModel } from "@llmos/protocol";
import type { RunnerStatsReply } from "../runner/ipc-protocol.js";
import type { ModelEntry } from "./model-entry.js";

/**
 * One model as `GET /api/ps` shows it: llmos' native fields (slots, queue order, memory estimate and measured RSS,
 * engine counters) plus the fields Ollama's clients read (`model`, `size`, `size_vram`, `expires_at`, ...).
 */
export function describeEntry(
  entry: ModelEntry,
  stats: RunnerStatsReply | undefined,
  engine: string,
): LoadedModel & Record<string, unknown> {
  const spec = entry.spec;
  if (stats) entry.measuredRssBytes = stats.rssBytes;
  const rss = entry.measuredRssBytes;
  const forever = entry.pinned || entry.keepAliveMs < 0;
  const expires = forever ? null : entry.expiresAt ? new Date(entry.expiresAt).toISOString() : null;
  const now = Date.now();
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
    runnerPid: entry.handle?.pid ?? null,
    state: entry.state,
    contextSize: entry.contextSize,
    kvCacheType: entry.kvCacheType,
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
    lastUsedAt: new Date(entry.lastUsed).toISOString(),
    memory: {
      estimatedBytes: entry.reservedBytes,
      kvCacheBytes: entry.estimate?.kvCache ?? null,
      rssBytes: rss ?? null,
      vramBytes: entry.offload ? entry.vramBytes : null,
      estimate: entry.estimate,
    },
    gpuLayers: entry.offload?.gpuLayers ?? 0,
    engine: entry.handle?.engine ?? engine,
    cpuBackend: entry.handle?.cpuBackend ?? null,
    loadMs: entry.handle ? Math.round(entry.handle.loadMs) : null,
    stats: stats?.engine ?? {
      decodeBatches: 0,
      multiSequenceBatches: 0,
      maxSequencesInBatch: 0,
      tokensGenerated: 0,
      promptTokens: 0,
    },
  } as LoadedModel & Record<string, unknown>;
}
