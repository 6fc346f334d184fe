/**
 * Time as the scheduler sees it: the current time and one-shot timers. The daemon uses the system clock; the
 * scheduler's unit tests pass a fake one and move it by hand, so keep-alive and queue timeouts run in microseconds.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `fn` once after `ms`; returns a function that cancels it. Timers never keep the process alive. */
  setTimer(fn: () => void, ms: number): () => void;
}

/**
 * The longest delay Node's timers take (2^31-1 ms, about 24.8 days): a longer one fires after 1 ms with a
 * TimeoutOverflowWarning. Longer waits are re-armed in steps of at most this.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Date.now and unref'd setTimeout; delays past MAX_TIMER_MS are waited in steps. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const due = Date.now() + Math.max(0, ms);
    let timer: NodeJS.Timeout;
    const arm = () => {
      const left = due - Date.now();
      timer = setTimeout(left > MAX_TIMER_MS ? arm : fn, Math.min(Math.max(0, left), MAX_TIMER_MS));
      timer.unref();
    };
    arm();
    return () => clearTimeout(timer);
  },
};

/** Resolves after `ms` on `clock`. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(resolve, ms));
}
