/**
 * Admission to a model's queue: the bounds (a full queue answers `queue_full` with a Retry-After from the observed
 * service rate) and the waiter that leaves the queue on timeout (`queue_timeout`) or when its client goes away.
 */
import { LlmosError } from "../errors.js";
import type { Metrics } from "../telemetry/metrics.js";
import type { Priority } from "./fair-queue.js";
import type { ModelEntry, SlotLease, Waiter } from "./model-entry.js";

/** Throws `queue_full` when `entry`'s queue or all queues together are at their bound. */
export function checkQueueBounds(
  entry: ModelEntry,
  queuedTotal: number,
  bounds: { perModel: number; total: number },
): void {
  if (entry.queue.size < bounds.perModel && queuedTotal < bounds.total) return;
  const rate = entry.serviceRate(Date.now());
  const retryAfterSeconds = rate > 0 ? Math.min(60, Math.max(1, Math.ceil((entry.queue.size + 1) / rate))) : 1;
  throw new LlmosError(
    "queue_full",
    `the queue for ${entry.name} is full (${entry.queue.size} waiting, ${queuedTotal} in total); retry in ${retryAfterSeconds}s`,
    {
      retryAfterSeconds,
      queued: entry.queue.size,
      queuedTotal,
    },
  );
}

export interface EnqueueOptions {
  tenant?: string | undefined;
  priority?: Priority | undefined;
  signal?: AbortSignal | undefined;
  timeoutMs: number;
  metrics: Metrics;
  /** Called after a waiter left a queue without a slot (timeout or abort). */
  onLeave: (home: ModelEntry) => void;
}

/** Queues a request on `entry`; resolves with a slot when the scheduler grants one (`waiter.resolve`). */
export function enqueue(entry: ModelEntry, o: EnqueueOptions): Promise<SlotLease> {
  return new Promise<SlotLease>((resolve, reject) => {
    const waiter: Waiter = {
      home: entry,
      tenant: o.tenant ?? "anonymous",
      priority: o.priority ?? "interactive",
      enqueuedAt: Date.now(),
      resolve,
      reject,
      cleanup: () => {
        clearTimeout(timer);
        o.signal?.removeEventListener("abort", onAbort);
        o.metrics.queueDepth.set({ model: waiter.home.name }, waiter.home.queue.size);
      },
    };
    const leave = (error: unknown) => {
      const home = waiter.home;
      if (home.queue.remove(waiter)) {
        waiter.cleanup();
        reject(error);
        o.onLeave(home);
      }
    };
    const timer = setTimeout(
      () =>
        leave(
          new LlmosError(
            "queue_timeout",
            `waited ${Math.round(o.timeoutMs / 1000)}s in the queue for ${entry.name} without getting a slot`,
            { timeoutMs: o.timeoutMs },
          ),
        ),
      o.timeoutMs,
    );
    const onAbort = () => leave(new LlmosError("client_closed", "the request was cancelled while queued"));
    o.signal?.addEventListener("abort", onAbort, { once: true });
    entry.queue.push(waiter, waiter.tenant, waiter.priority);
    o.metrics.queueDepth.set({ model: entry.name }, entry.queue.size);
  });
}
