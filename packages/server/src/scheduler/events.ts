/**
 * What the scheduler announces, as a typed public subscription (`scheduler.subscribe(listener)`): models loading,
 * loaded, failing, unloading, unloaded (with why: evicted, expired, ...) and crashing; runners' CPU allotments;
 * requests queued, started, finished and turned away. The dashboard, metrics, the usage model and learned keep-alive policies listen here; the scheduler's own
 * waits (a load waiting for memory, an unload waiting for its requests) wake on the same events instead of polling.
 *
 * Listeners are called synchronously, in order, as things happen: keep them quick. One that throws is logged
 * and does not disturb scheduling or the other listeners.
 */
import type { ErrorCode } from "@llmos/protocol";
import type { Priority } from "./fair-queue.js";
import type { UnloadReason } from "./model-lifecycle.js";

interface Base {
  /** Canonical model name (`name:tag`). */
  model: string;
  /** Milliseconds since the epoch. */
  at: number;
}

/** Who a request is accounted to: the tenant of fair queuing (`key:<id>`, `user:<name>` or `addr:<ip>`). */
interface RequestBase extends Base {
  tenant: string;
  priority: Priority;
}

export type SchedulerEvent =
  /** A load began: for a request or a load call, or (`prewarm`) ahead of a predicted request. */
  | ({ type: "model.loading"; prewarm?: boolean } & Base)
  | ({
      type: "model.loaded";
      /** The runner's time to load the model (as `/api/ps` shows it). */
      loadMs: number;
      runnerPid: number | null;
      contextSize: number;
      slots: number;
      /** Bytes charged to the memory budget. */
      reservedBytes: number;
      /** The memory estimate, and the runner's RSS measured once loaded (null when it did not answer). */
      estimateBytes: number;
      rssBytes: number | null;
      /** Its runner was started ahead of the load (runtime/prestarted-runner.ts): only the weights were loaded. */
      prestarted?: boolean;
    } & Base)
  | ({ type: "model.load_failed"; code: ErrorCode | null; message: string } & Base)
  /** An unload began (`reason` `evicted` and `oom_retry` are evictions under memory pressure). */
  | ({ type: "model.unloading"; reason: UnloadReason } & Base)
  | ({ type: "model.unloaded"; reason: UnloadReason } & Base)
  /**
   * The runner exited unexpectedly; its in-flight requests failed, queued ones wait for a fresh runner. `cause`:
   * `oom` when the kernel stopped it at its memory limit (with the limit, its peak and the raised estimate the
   * next load starts from), `exit` for any other end.
   */
  | ({
      type: "model.crashed";
      cause: "exit" | "oom";
      memoryLimitBytes: number | null;
      peakMemoryBytes: number | null;
      nextEstimateBytes: number | null;
    } & Base)
  /**
   * The runner's CPU allotment changed (decided; see cpu-allotment.ts): `threads` (0 while idle), the CPUs, and
   * whether other runners are busy meanwhile.
   */
  | ({ type: "model.cpu"; threads: number; cpus: number[]; shared: boolean } & Base)
  /** The runner applied an allotment, `latencyMs` after it was decided. */
  | ({ type: "model.cpu_applied"; threads: number; latencyMs: number } & Base)
  /** A request asked for the model (before it gets a slot, queues, or is turned away). */
  | ({ type: "request.arrived" } & RequestBase)
  /** A request waits for a slot (`queued`: the model's queue length with it). */
  | ({ type: "request.queued"; queued: number } & RequestBase)
  | ({ type: "request.started"; queuedMs: number; loadMs: number } & RequestBase)
  /** The request gave its slot back (`heldMs`: how long it had it). */
  | ({ type: "request.finished"; heldMs: number } & RequestBase)
  /** The request left without a slot: queue full or timed out, client gone, model failed to load, shutdown. */
  | ({ type: "request.rejected"; code: ErrorCode | null; waitedMs: number } & RequestBase)
  /**
   * A model-tool job (`job`: quantize, imatrix, eval) working on `model` took memory out of the budget for its
   * worker, or gave it back (memory-reservations.ts).
   */
  | ({ type: "job.reserved" | "job.released"; job: string; bytes: number } & Base);

export type SchedulerEventType = SchedulerEvent["type"];
export type SchedulerListener = (event: SchedulerEvent) => void;

/** The scheduler's event stream: public subscriptions plus the scheduler's own waits. */
export class SchedulerEvents {
  private readonly listeners = new Set<SchedulerListener>();

  constructor(private readonly onListenerError: (error: unknown, event: SchedulerEvent) => void) {}

  /** Calls `listener` with every event from now on; returns the function that unsubscribes it. */
  subscribe(listener: SchedulerListener): () => void {
    const entry: SchedulerListener = (e) => listener(e);
    this.listeners.add(entry);
    return () => this.listeners.delete(entry);
  }

  emit(event: SchedulerEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (error) {
        this.onListenerError(error, event);
      }
    }
  }

  /** Resolves at the next event. */
  next(): Promise<SchedulerEvent> {
    return new Promise((resolve) => {
      const off = this.subscribe((e) => {
        off();
        resolve(e);
      });
    });
  }

  /** Resolves once `condition` holds: at once, or at the first event after which it does. */
  until(condition: () => boolean): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve) => {
      const off = this.subscribe(() => {
        if (!condition()) return;
        off();
        resolve();
      });
    });
  }
}
