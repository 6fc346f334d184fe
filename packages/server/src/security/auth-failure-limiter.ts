import { LlmosError } from "../errors.js";
import type { AuditLog } from "./audit-log.js";
import { periodsFor, type Now } from "./time-scale.js";

/** Settings of the failed-authentication limiter. */
export interface AuthFailureLimiterOptions {
  /** Failures within one (scaled) minute that start a lock-out. Default 20. */
  maxFailures?: number;
  /** Lock-out length in (scaled) minutes. Default 5. */
  lockMinutes?: number;
  timeScale: number;
  now?: Now;
  /** Most addresses tracked at once (oldest dropped first). Default 10000. */
  maxTracked?: number;
}

interface AddressState {
  windowStart: number;
  failures: number;
  lockedUntil: number;
}

/**
 * Slows down key guessing: an address that fails authentication `maxFailures` times within a minute is
 * refused (429) for `lockMinutes`. Each lock-out writes one `auth.failure_burst` audit entry, not one
 * per failure, so a flood cannot flood the audit log.
 */
export class AuthFailureLimiter {
  private readonly addresses = new Map<string, AddressState>();
  private readonly maxFailures: number;
  private readonly minuteMs: number;
  private readonly lockMs: number;
  private readonly maxTracked: number;
  private readonly now: Now;

  constructor(
    options: AuthFailureLimiterOptions,
    private readonly audit: AuditLog,
  ) {
    this.maxFailures = options.maxFailures ?? 20;
    this.minuteMs = periodsFor(options.timeScale).minuteMs;
    this.lockMs = (options.lockMinutes ?? 5) * this.minuteMs;
    this.maxTracked = options.maxTracked ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Throws `rate_limited` (with `details.retryAfterSeconds`) while `address` is locked out. */
  assertAllowed(address: string): void {
    const state = this.addresses.get(address);
    if (!state) return;
    const now = this.now();
    if (state.lockedUntil > now) {
      const retryAfterSeconds = Math.ceil(state.lockedUntil - now) / 1000;
      throw new LlmosError(
        "rate_limited",
        `too many failed authentication attempts from ${address}; retry after ${retryAfterSeconds} s`,
        {
          retryAfterSeconds,
          limit: "auth_failures",
        },
      );
    }
  }

  /** Counts one failed authentication; returns true when this failure started a lock-out. */
  recordFailure(address: string): boolean {
    const now = this.now();
    let state = this.addresses.get(address);
    if (state && state.lockedUntil > now) return false; // already locked: no new burst entry
    if (!state || now - state.windowStart >= this.minuteMs || state.lockedUntil !== 0) {
      this.addresses.delete(address);
      state = { windowStart: now, failures: 0, lockedUntil: 0 };
      this.addresses.set(address, state);
      this.prune();
    }
    state.failures += 1;
    if (state.failures < this.maxFailures) return false;
    state.lockedUntil = now + this.lockMs;
    this.audit.record({
      action: "auth.failure_burst",
      result: "denied",
      remoteAddress: address,
      target: address,
      details: { failures: state.failures, windowSeconds: this.minuteMs / 1000, lockedSeconds: this.lockMs / 1000 },
    });
    return true;
  }

  /** True while `address` is locked out. */
  isLocked(address: string): boolean {
    const state = this.addresses.get(address);
    return state !== undefined && state.lockedUntil > this.now();
  }

  private prune(): void {
    // Map iteration is insertion order (entries are re-inserted on each new window): drop the oldest.
    for (const address of this.addresses.keys()) {
      if (this.addresses.size <= this.maxTracked) break;
      this.addresses.delete(address);
    }
  }
}
