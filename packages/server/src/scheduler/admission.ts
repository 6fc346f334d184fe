/**
 * Admission, applied: the `queue_full` error of a rejected request, and the waiter that queues a request and
 * leaves the queue on timeout (`queue_timeout`) or when its client goes away. Whether a request may queue is
 * decided in decisions.ts (`decideAdmission`).
 */
import { LlmosError } from "../errors.js";
import type { Clock } from "./clock.js";
import type { AdmissionDecision } from "./decisions.js";
import type { Priority } from "./fair-queue.js";
import type { ModelEntry, SlotLease, Waiter } from "./model-entry.js";

/** The error a rejected request gets (503, with Retry-After). */
export function queueFullError(model: string, d: Extract<AdmissionDecision, { kind: "reject" }>): LlmosError {
  return new LlmosError(
    "queue_full",
    `the queue for ${model} is full (${d.queued} waiting, ${d.queuedTotal} in total); retry in ${d.retryAfterSeconds}s`,
    { retryAfterSeconds: d.retryAfterSeconds, queued: d.queued, queuedTotal: d.queuedTotal },
  );
}

export interface EnqueueOptions {
  tenant: string;
  priority: Priority;
  signal?: AbortSignal | undefined;
  timeoutMs: number;
  clock: Clock;
  /** Called after the waiter joined `entry`'s queue. */
  onQueued: (waiter: Waiter) => void;
  /** Called after a waiter left a queue without a slot (timeout or abort), with the error it got. */
  onLeave: (waiter: Waiter, error: unknown) => void;
}

/** Queues a request on `entry`; resolves with a slot when the scheduler grants one (`waiter.resolve`). */
export function enqueue(entry: ModelEntry, o: EnqueueOptions): Promise<SlotLease> {
  return new Promise<SlotLease>((resolve, reject) => {
    let cancelTimer = () => {};
    const waiter: Waiter = {
      home: entry,
      tenant: o.tenant,
      priority: o.priority,
      enqueuedAt: o.clock.now(),
      resolve,
      reject,
      cleanup: () => {
        cancelTimer();
        o.signal?.removeEventListener("abort", onAbort);
      },
    };
    const leave = (error: unknown) => {
      if (!waiter.home.queue.remove(waiter)) return;
      waiter.cleanup();
      reject(error);
      o.onLeave(waiter, error);
    };
    cancelTimer = o.clock.setTimer(
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
    o.onQueued(waiter);
  });
}
