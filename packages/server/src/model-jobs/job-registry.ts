/**
 * Long model jobs (eval, imatrix) as explicit state machines, run one at a time in submission order:
 *
 *   queued --start--> running --succeed--> succeeded
 *     |                  |------fail-----> failed
 *     '------cancel------'-----cancel----> cancelled
 *
 * `nextState` is the pure transition function; the registry applies it, runs the job's work with an AbortSignal
 * (cancel aborts it, which kills the worker), keeps finished jobs for `keepMs`, and tells listeners of each change.
 *
 * Each job remembers every model it uses (an eval's base too). A caller passes what it may use (`MayUse`, its key's
 * model allow-list): a job on a model it may not use is not listed, and is `not_found` to it (the same answer as a
 * job that does not exist), so a tenant can neither see nor cancel another tenant's jobs on other models.
 */
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { EvalReport, ImatrixReport, JobState, JobView } from "@llmos/protocol";
import { LlmosError } from "../errors.js";

/** What happens to a job. */
export type JobEvent = "start" | "succeed" | "fail" | "cancel";

/** The state after `event`, or null when the event does not apply (e.g. cancelling a finished job). */
export function nextState(state: JobState, event: JobEvent): JobState | null {
  switch (state) {
    case "queued":
      return event === "start" ? "running" : event === "cancel" ? "cancelled" : null;
    case "running":
      return event === "succeed" ? "succeeded" : event === "fail" ? "failed" : event === "cancel" ? "cancelled" : null;
    default:
      return null;
  }
}

/** The work of a job: reports progress, resolves with its result, stops when `signal` aborts. */
export type JobWork = (
  progress: (done: number, total: number) => void,
  signal: AbortSignal,
) => Promise<EvalReport | ImatrixReport>;

/** Whether the caller may use `model` (its key's allow-list); absent: every model. */
export type MayUse = (model: string) => boolean;

/** How many jobs may wait: in all, and per owner (an API key); a job over either is refused with `queue_full`. */
export interface JobQueueLimits {
  queued: number;
  queuedPerOwner: number;
}

/** Each waiting job holds its text (up to 8 MiB): a bound on them is a bound on that memory. */
export const DEFAULT_JOB_QUEUE_LIMITS: JobQueueLimits = { queued: 32, queuedPerOwner: 4 };

interface Job {
  view: JobView;
  /** Every model the job uses. */
  models: readonly string[];
  /** Who submitted it (an API key id; null: the admin token or a local caller without keys). */
  owner: string | null;
  work: JobWork;
  controller: AbortController;
}

export class JobRegistry {
  private readonly jobs = new Map<string, Job>();
  private readonly queue: Job[] = [];
  private running: Job | undefined;
  private readonly events = new EventEmitter();
  private closed = false;

  constructor(
    private readonly keepMs = 60 * 60 * 1000,
    private readonly limits: JobQueueLimits = DEFAULT_JOB_QUEUE_LIMITS,
  ) {
    this.events.setMaxListeners(0);
  }

  /**
   * Queues a job on `model` (and the `others` it uses) for `owner`; it starts when the jobs before it are done.
   * @throws `queue_full` when `limits` jobs wait already, in all or for this owner.
   */
  submit(
    kind: JobView["kind"],
    model: string,
    work: JobWork,
    others: readonly string[] = [],
    owner: string | null = null,
  ): JobView {
    if (this.closed) throw new LlmosError("unavailable", "llmos is shutting down");
    this.prune(Date.now());
    const mine = owner === null ? 0 : this.queue.filter((j) => j.owner === owner).length;
    const full = this.queue.length >= this.limits.queued;
    if (full || mine >= this.limits.queuedPerOwner)
      throw new LlmosError(
        "queue_full",
        `${full ? `${this.queue.length} jobs are` : `this key has ${mine} jobs`} waiting already; try again when one has finished`,
      );
    const job: Job = {
      view: {
        id: randomUUID(),
        kind,
        state: "queued",
        model,
        createdAt: new Date().toISOString(),
        progress: { done: 0, total: 0 },
      },
      models: [model, ...others],
      owner,
      work,
      controller: new AbortController(),
    };
    this.jobs.set(job.view.id, job);
    this.queue.push(job);
    this.pump();
    return this.snapshot(job);
  }

  /** A job's current view. @throws `not_found`. */
  get(id: string, mayUse?: MayUse): JobView {
    return this.snapshot(this.find(id, mayUse));
  }

  /** Every job kept that the caller may see, newest first. */
  list(mayUse?: MayUse): JobView[] {
    this.prune(Date.now());
    return [...this.jobs.values()]
      .filter((j) => visible(j, mayUse))
      .map((j) => this.snapshot(j))
      .reverse();
  }

  /** Cancels a queued or running job (a running one's worker is killed). Finished jobs are left as they are. */
  cancel(id: string, mayUse?: MayUse): JobView {
    const job = this.find(id, mayUse);
    if (this.apply(job, "cancel")) {
      job.controller.abort(new LlmosError("client_closed", "job cancelled"));
      const i = this.queue.indexOf(job);
      if (i >= 0) this.queue.splice(i, 1);
    }
    return this.snapshot(job);
  }

  /** Calls `listener` with each new view of job `id` until it is finished; returns the unsubscribe function. */
  watch(id: string, listener: (view: JobView) => void): () => void {
    this.find(id);
    const on = (view: JobView) => {
      if (view.id === id) listener(view);
    };
    this.events.on("change", on);
    return () => this.events.off("change", on);
  }

  /** Cancels every job (daemon shutdown) and waits for the running one to stop. */
  async close(): Promise<void> {
    this.closed = true;
    const running = this.running;
    for (const job of [...this.queue, ...(running ? [running] : [])]) this.cancel(job.view.id);
    if (running) await new Promise<void>((resolve) => this.events.once("idle", resolve));
  }

  private find(id: string, mayUse?: MayUse): Job {
    const job = this.jobs.get(id);
    if (!job || !visible(job, mayUse))
      throw new LlmosError("not_found", `job ${id} not found (finished jobs are kept for an hour)`);
    return job;
  }

  private apply(job: Job, event: JobEvent): boolean {
    const next = nextState(job.view.state, event);
    if (!next) return false;
    job.view.state = next;
    const now = new Date().toISOString();
    if (next === "running") job.view.startedAt = now;
    else job.view.finishedAt = now;
    this.emit(job);
    return true;
  }

  private emit(job: Job): void {
    this.events.emit("change", this.snapshot(job));
  }

  private pump(): void {
    if (this.running) return;
    const job = this.queue.shift();
    if (!job) return void this.events.emit("idle");
    this.running = job;
    this.apply(job, "start");
    const progress = (done: number, total: number) => {
      job.view.progress = { done, total };
      this.emit(job);
    };
    job
      .work(progress, job.controller.signal)
      .then(
        (result) => {
          job.view.result = result;
          this.apply(job, "succeed");
        },
        (error: unknown) => {
          const e = error instanceof LlmosError ? error : new LlmosError("internal", String((error as Error)?.message));
          job.view.error = { code: e.code, message: e.message };
          this.apply(job, "fail");
        },
      )
      .finally(() => {
        this.running = undefined;
        this.pump();
      });
  }

  private prune(now: number): void {
    for (const [id, job] of this.jobs) {
      const done = job.view.finishedAt ? Date.parse(job.view.finishedAt) : undefined;
      if (done !== undefined && now - done > this.keepMs) this.jobs.delete(id);
    }
  }

  private snapshot(job: Job): JobView {
    return structuredClone(job.view);
  }
}

function visible(job: Job, mayUse: MayUse | undefined): boolean {
  return mayUse === undefined || job.models.every(mayUse);
}
