/**
 * The machine's processor as the simulator shares it: processor sharing among everything that computes at once
 * (requests' prompts and generations, model loads). Each job needs an amount of work, measured as the time it takes
 * alone (the calibrated speeds); with n jobs running, the machine does `capacity(n)` jobs' worth of work per unit of
 * time (1 alone; at most `maxParallelism`, since two cores and batched decoding give more than one job's throughput
 * but far from n), shared equally. Without it every request took its solo time however many ran at once: time to
 * first token under load came out far below a real replay's (p99 365 against 2535 ms on the mixed trace).
 *
 * Jobs have an optional first milestone (the end of the prompt: the first token), reported as it is reached.
 */
import type { SimClock } from "./sim-clock.js";

export interface CpuJob {
  /** Solo time until the milestone (e.g. the prompt), ms; 0 for none. */
  firstMs: number;
  /** Solo time of the whole job (at least `firstMs`), ms. */
  totalMs: number;
  onFirst?: () => void;
  onDone: () => void;
}

interface Running {
  job: CpuJob;
  /** Solo work left, ms. */
  left: number;
  firstPending: boolean;
}

export class SharedCpu {
  private readonly running = new Set<Running>();
  private last: number;
  private cancelNext: (() => void) | undefined;

  /** `maxParallelism`: the most jobs' worth of solo throughput the machine gives at once (1: strictly one). */
  constructor(
    private readonly clock: SimClock,
    private readonly maxParallelism: number,
  ) {
    this.last = clock.now();
  }

  /** Jobs computing now. */
  get load(): number {
    return this.running.size;
  }

  /** Starts a job; its callbacks run on the simulated clock as it reaches its milestone and its end. */
  start(job: CpuJob): void {
    this.advance();
    const r: Running = { job, left: Math.max(0, job.totalMs), firstPending: job.onFirst !== undefined };
    this.running.add(r);
    this.settle();
  }

  /** Work per ms each job gets now. */
  private rate(): number {
    const n = this.running.size;
    return n === 0 ? 0 : Math.min(n, Math.max(1, this.maxParallelism)) / n;
  }

  /** Takes the work done since the last change off every running job. */
  private advance(): void {
    const now = this.clock.now();
    const done = (now - this.last) * this.rate();
    this.last = now;
    if (done <= 0) return;
    for (const r of this.running) r.left = Math.max(0, r.left - done);
  }

  /** Fires what is due now, then arms one timer for the next milestone or end. */
  private settle(): void {
    // The clock counts epoch milliseconds (about 1.8e12), where a double resolves about 0.0002 ms: anything within
    // a microsecond is due now, or a timer that cannot move the clock would fire forever.
    const eps = 1e-3;
    for (const r of [...this.running]) {
      const passed = r.job.totalMs - r.left;
      if (r.firstPending && passed >= r.job.firstMs - eps) {
        r.firstPending = false;
        r.job.onFirst?.();
      }
      if (r.left <= eps) {
        this.running.delete(r);
        r.job.onDone();
      }
    }
    this.cancelNext?.();
    this.cancelNext = undefined;
    if (this.running.size === 0) return;
    const rate = this.rate();
    let soonest = Infinity;
    for (const r of this.running) {
      const toFirst = r.firstPending ? r.job.firstMs - (r.job.totalMs - r.left) : Infinity;
      soonest = Math.min(soonest, Math.max(eps, Math.min(toFirst, r.left)) / rate);
    }
    this.cancelNext = this.clock.setTimer(() => {
      this.cancelNext = undefined;
      this.advance();
      this.settle();
    }, soonest);
  }
}
