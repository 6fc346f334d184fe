import type { Clock } from "../../src/scheduler/clock.js";

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * Simulated time for the scheduler: timers in a binary heap, run in time order by `run()`, with the promise
 * callbacks each one starts let to settle before the next (one macrotask turn: the scheduler's own waits are
 * promise chains and timers on this clock, never real ones). Time jumps from one timer to the next, so a day of
 * trace takes as long as its events do to process.
 */
export class SimClock implements Clock {
  private time: number;
  private seq = 0;
  private readonly heap: Timer[] = [];

  constructor(start: number) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimer(fn: () => void, ms: number): () => void {
    const timer: Timer = { at: this.time + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }

  /** Runs timers in order until none is due at or before `until` (time ends at `until`). Returns timers run. */
  async run(until = Infinity): Promise<number> {
    let ran = 0;
    await turn();
    for (;;) {
      const next = this.heap[0];
      if (!next || next.at > until) break;
      this.pop();
      if (next.cancelled) continue;
      this.time = Math.max(this.time, next.at);
      next.fn();
      ran++;
      await turn();
    }
    if (until !== Infinity) this.time = Math.max(this.time, until);
    return ran;
  }

  private push(t: Timer): void {
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l]!, h[m]!)) m = l;
      if (r < h.length && before(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}

function before(a: Timer, b: Timer): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** One macrotask turn: every promise callback queued so far (and those they queue) has run after it. */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
