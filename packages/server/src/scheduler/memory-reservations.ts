/**
 * Memory held outside runners: the model-tool jobs (quantize, imatrix, eval) run in their own worker processes and
 * need RAM like a load does. A job reserves its estimate before its worker starts: the reservation is placed like
 * a load (one placement at a time, behind the loads before it), evicting idle models the policy chooses or waiting
 * for busy ones, and it counts against the budget (`SchedulerSnapshot.jobBytes`) until the job releases it, so no
 * load or prewarm takes that memory meanwhile. A reservation is never evicted.
 */
import { LlmosError } from "../errors.js";
import type { SchedulerContext } from "./context.js";
import { decidePlacement } from "./decisions.js";
import type { Executor } from "./executor.js";
import { fmtBytes } from "./format-bytes.js";

/** What a reservation is for: the job's kind and the model it works on. */
export interface ReservationRequest {
  job: string;
  model: string;
  bytes: number;
}

/** A held reservation; `release()` gives its memory back (idempotent). */
export interface MemoryReservation {
  readonly bytes: number;
  release(): void;
}

export class MemoryReservations {
  private readonly held = new Map<number, ReservationRequest>();
  private nextId = 1;

  constructor(
    private readonly ctx: SchedulerContext,
    private readonly executor: Executor,
  ) {}

  /** Bytes held by reservations now. */
  total(): number {
    let n = 0;
    for (const r of this.held.values()) n += r.bytes;
    return n;
  }

  /**
   * Places `request` within the budget (call it inside the loader's turn: one placement at a time). Aborting
   * `signal` while it waits gives up with `client_closed`.
   * @throws `insufficient_memory` when it cannot fit even with every evictable model gone.
   */
  async place(request: ReservationRequest, signal?: AbortSignal): Promise<MemoryReservation> {
    const { ctx } = this;
    const aborted = () => new LlmosError("client_closed", `${request.job} cancelled while waiting for memory`);
    for (;;) {
      if (ctx.closing()) throw new LlmosError("unavailable", "llmos is shutting down");
      if (signal?.aborted) throw aborted();
      // The job is not a model: decidePlacement sees it as one that is not held, needing its bytes.
      const decision = decidePlacement(ctx.snapshot(), ctx.policy, {
        model: `job:${request.job}:${request.model}`,
        neededBytes: request.bytes,
      });
      switch (decision.kind) {
        case "fits":
          return this.hold(request);
        case "impossible":
          throw new LlmosError(
            "insufficient_memory",
            `${request.job} of ${request.model} needs ${fmtBytes(decision.neededBytes)} but at most ${fmtBytes(decision.availableBytes)} of the ${fmtBytes(decision.budgetBytes)} budget can be freed (pinned or keep_alive=-1 models hold the rest)`,
            {
              neededBytes: decision.neededBytes,
              availableBytes: decision.availableBytes,
              budgetBytes: decision.budgetBytes,
            },
          );
        case "evict":
          await this.executor.evictNamed(decision.victims);
          break;
        case "wait":
        case "abandon":
          // Busy (or stopping) models hold the memory: decide again when anything changes.
          await waitOrAbort(ctx.events.next(), signal);
          break;
      }
    }
  }

  private hold(request: ReservationRequest): MemoryReservation {
    const { ctx } = this;
    const id = this.nextId++;
    this.held.set(id, request);
    this.changed({ type: "job.reserved", model: request.model, job: request.job, bytes: request.bytes });
    return {
      bytes: request.bytes,
      release: () => {
        if (!this.held.delete(id)) return;
        this.changed({ type: "job.released", model: request.model, job: request.job, bytes: request.bytes });
        // Loads waiting for memory decide again (they wake on the event above); so does housekeeping.
        ctx.reconcile();
      },
    };
  }

  private changed(event: { type: "job.reserved" | "job.released"; model: string; job: string; bytes: number }): void {
    const { ctx } = this;
    ctx.metrics.memoryBytes.set({ kind: "jobs" }, this.total());
    ctx.logger.info(
      { job: event.job, model: event.model, bytes: event.bytes },
      event.type === "job.reserved" ? "memory reserved for a job" : "job memory released",
    );
    ctx.events.emit({ ...event, at: ctx.clock.now() });
  }
}

function waitOrAbort(next: Promise<unknown>, signal: AbortSignal | undefined): Promise<unknown> {
  if (!signal) return next;
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new LlmosError("client_closed", "cancelled while waiting for memory"));
    signal.addEventListener("abort", onAbort, { once: true });
    next.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
