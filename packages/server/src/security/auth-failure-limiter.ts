import { createHash } from "node:crypto";
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
  /** Most addresses and credentials tracked at once (oldest dropped first). Default 10000. */
  maxTracked?: number;
}

interface AddressState {
  windowStart: number;
  failures: number;
  lockedUntil: number;
}

/**
 * Slows down key guessing. Failures are counted per client address and per presented credential: `maxFailures`
 * within a minute lock that address (or that credential) for `lockMinutes`, during which its failed attempts
 * get 429 instead of 401. A valid key is never refused: the lock applies to failures only, so a burst of bad
 * keys from one address (or from every client behind one proxy) cannot lock out the good keys arriving from it.
 * Each lock-out writes one `auth.failure_burst` audit entry, not one per failure, so a flood cannot flood the
 * audit log.
 */
export class AuthFailureLimiter {
  private readonly subjects = new Map<string, AddressState>();
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

  /**
   * Throws `rate_limited` (with `details.retryAfterSeconds`) while `address` or `credential` is locked out.
   * Call it for failed attempts only.
   */
  assertAllowed(address: string, credential?: string): void {
    const now = this.now();
    for (const [subject, label] of this.subjectsOf(address, credential)) {
      const state = this.subjects.get(subject);
      if (!state || state.lockedUntil <= now) continue;
      const retryAfterSeconds = Math.ceil(state.lockedUntil - now) / 1000;
      throw new LlmosError(
        "rate_limited",
        `too many failed authentication attempts ${label}; retry after ${retryAfterSeconds} s`,
        { retryAfterSeconds, limit: "auth_failures" },
      );
    }
  }

  /** Counts one failed authentication of `address` (and `credential`); true when it started a lock-out. */
  recordFailure(address: string, credential?: string): boolean {
    let started = false;
    for (const [subject, , target] of this.subjectsOf(address, credential)) {
      if (this.count(subject)) {
        started = true;
        this.audit.record({
          action: "auth.failure_burst",
          result: "denied",
          remoteAddress: address,
          target,
          details: {
            failures: this.maxFailures,
            windowSeconds: this.minuteMs / 1000,
            lockedSeconds: this.lockMs / 1000,
            by: subject.startsWith("addr:") ? "address" : "credential",
          },
        });
      }
    }
    return started;
  }

  /** True while `address` is locked out. */
  isLocked(address: string): boolean {
    const state = this.subjects.get(`addr:${address}`);
    return state !== undefined && state.lockedUntil > this.now();
  }

  /** [map key, phrase for messages, audit target] of the address and, when given, the credential. */
  private subjectsOf(address: string, credential: string | undefined): Array<[string, string, string]> {
    const out: Array<[string, string, string]> = [[`addr:${address}`, `from ${address}`, address]];
    if (credential !== undefined) {
      // A digest, so the map never holds presented secrets; the audit names a key id when the format has one.
      const digest = createHash("sha256").update(credential).digest("hex").slice(0, 16);
      const id = /^llmos_([0-9a-f]{12})_/.exec(credential)?.[1];
      out.push([`cred:${digest}`, "with this credential", id ? `key ${id}` : `credential ${digest}`]);
    }
    return out;
  }

  /** One failure of `subject`; true when it reached the limit and locked it. */
  private count(subject: string): boolean {
    const now = this.now();
    let state = this.subjects.get(subject);
    if (state && state.lockedUntil > now) return false; // already locked: no new burst entry
    if (!state || now - state.windowStart >= this.minuteMs || state.lockedUntil !== 0) {
      this.subjects.delete(subject);
      state = { windowStart: now, failures: 0, lockedUntil: 0 };
      this.subjects.set(subject, state);
      this.prune();
    }
    state.failures += 1;
    if (state.failures < this.maxFailures) return false;
    state.lockedUntil = now + this.lockMs;
    return true;
  }

  private prune(): void {
    // Map iteration is insertion order (entries are re-inserted on each new window): drop the oldest.
    for (const subject of this.subjects.keys()) {
      if (this.subjects.size <= this.maxTracked) break;
      this.subjects.delete(subject);
    }
  }
}
