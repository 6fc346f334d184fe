/**
 * Notices a runner that has work and makes no progress: a llama.cpp deadlock (seen: two ggml threads asserting at
 * once, each forking a backtrace helper that waits on the other) leaves the process alive, its requests open and the
 * model "busy" forever. Progress is anything the runner says (a token chunk, a result, a load or decode step it
 * reports); work is a request handed to it and not answered yet. The decision is a pure function of a snapshot; the
 * class keeps the snapshot and checks it on a timer while work is in flight.
 */

/** What the watchdog knows of one runner at a moment. */
export interface ProgressSnapshot {
  /** Requests handed to the runner and not answered yet. */
  inFlight: number;
  /** When the runner last showed progress (or when its current work began, if later). */
  lastProgressAt: number;
}

/** True when the runner has work and has shown no progress for longer than `stallMs` (0 turns the check off). */
export function isStalled(snapshot: ProgressSnapshot, now: number, stallMs: number): boolean {
  return stallMs > 0 && snapshot.inFlight > 0 && now - snapshot.lastProgressAt > stallMs;
}

/** How often the snapshot is checked while work is in flight: a quarter of the limit, between 0.1 and 1 s. */
export function checkIntervalMs(stallMs: number): number {
  return Math.max(100, Math.min(1000, Math.floor(stallMs / 4)));
}

export class ProgressWatchdog {
  private inFlight = 0;
  private lastProgressAt: number;
  private timer: NodeJS.Timeout | undefined;
  private fired = false;

  /**
   * @param stallMs how long a runner with work may show no progress (0: never stalls).
   * @param onStall called once, with the time since the last progress, when the runner is found stalled.
   */
  constructor(
    private readonly stallMs: number,
    private readonly onStall: (idleMs: number) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.lastProgressAt = now();
  }

  /** Work was handed to the runner. Returns the function that marks it answered (idempotent). */
  begin(): () => void {
    // Time the runner spent idle before this work is not a stall.
    if (this.inFlight++ === 0) this.lastProgressAt = this.now();
    this.arm();
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (--this.inFlight === 0) this.disarm();
    };
  }

  /** The runner showed progress. */
  progress(): void {
    this.lastProgressAt = this.now();
  }

  /** The current snapshot (for tests and diagnostics). */
  snapshot(): ProgressSnapshot {
    return { inFlight: this.inFlight, lastProgressAt: this.lastProgressAt };
  }

  /** Checks now; calls `onStall` (once per watchdog) when stalled. */
  check(): void {
    const now = this.now();
    if (this.fired || !isStalled(this.snapshot(), now, this.stallMs)) return;
    this.fired = true;
    this.disarm();
    this.onStall(now - this.lastProgressAt);
  }

  /** Stops checking (the runner is gone). */
  dispose(): void {
    this.fired = true;
    this.disarm();
  }

  private arm(): void {
    if (this.stallMs <= 0 || this.fired || this.timer) return;
    this.timer = setInterval(() => this.check(), checkIntervalMs(this.stallMs));
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
