import { LlmosError } from "../errors.js";
import { periodsFor, utcDay, type Now } from "./time-scale.js";

/**
 * A token bucket: holds up to `capacity`, refills continuously at `capacity` per period. The level may
 * go negative when actual usage is charged after the fact; it then takes longer to recover.
 */
export class TokenBucket {
  private level: number;
  private updatedAt: number;
  private readonly perMs: number;

  constructor(
    readonly capacity: number,
    readonly periodMs: number,
    now: number,
  ) {
    this.level = capacity;
    this.updatedAt = now;
    this.perMs = capacity / periodMs;
  }

  /** Current level (may be negative or fractional). */
  levelAt(now: number): number {
    if (now > this.updatedAt) {
      this.level = Math.min(this.capacity, this.level + (now - this.updatedAt) * this.perMs);
      this.updatedAt = now;
    }
    return this.level;
  }

  /** Ms until the level reaches `amount` (0 when it already has). */
  msUntil(amount: number, now: number): number {
    const missing = Math.min(amount, this.capacity) - this.levelAt(now);
    return missing <= 0 ? 0 : missing / this.perMs;
  }

  /** Removes `amount` (may drive the level negative). */
  take(amount: number, now: number): void {
    this.levelAt(now);
    this.level -= amount;
  }
}

/** The limits of one key (a KeyRecord fits). */
export interface KeyLimits {
  id: string;
  rpm: number | null;
  tpm: number | null;
  tokensPerDay: number | null;
}

/** One limit's state, as reported in `x-ratelimit-*` headers. */
export interface LimitState {
  limit: number;
  /** Whole units left now (never negative). */
  remaining: number;
  /** Ms until the bucket is full again (or, for the daily quota, until the next day starts). */
  resetMs: number;
}

/** Every limit a key has; absent entries are unlimited. */
export interface RateLimitStatus {
  requests?: LimitState;
  tokens?: LimitState;
  daily?: LimitState;
}

interface KeyState {
  requests?: TokenBucket;
  tokens?: TokenBucket;
  rpm: number | null;
  tpm: number | null;
  day: number;
  dayUsed: number;
  /** Loading what the usage table holds for today (once per key and process). */
  seed?: Promise<void>;
}

export interface RateLimiterOptions {
  /** 1 = real minutes and days; smaller shrinks them (tests). */
  timeScale: number;
  now?: Now;
  /**
   * Tokens a key already used on a UTC day (from the usage table), so the daily quota survives restarts.
   * Only consulted when `timeScale` is 1 (a scaled "day" is not a UTC day).
   */
  tokensUsedOn?: (keyId: string, day: string) => Promise<number>;
}

/** What the security layer needs of a rate limiter: this process's (RateLimiter) or a cluster's (SharedRateLimiter). */
export interface Limiter {
  /** Admits one request (throws `rate_limited` / `quota_exceeded`); see RateLimiter.admit. */
  admit(key: KeyLimits, estimatedTokens: number): Promise<RateLimitStatus>;
  /** Charges the tokens a finished request used. */
  charge(keyId: string, tokens: number): void;
  /** The limits' state as last known (for `x-ratelimit-*` headers). */
  statusOf(key: KeyLimits): RateLimitStatus;
  /** Drops what is known of a key (after a revocation). */
  forget(keyId: string): void;
  /** Writes charges not yet stored; resolves when they are. */
  flush?(): Promise<void>;
  /** Flushes and stops. Idempotent. */
  close?(): Promise<void>;
}

/**
 * Per-key limits: requests/minute and tokens/minute as token buckets, tokens per (UTC) day as a counter.
 * State is in memory per process; a cluster uses SharedRateLimiter, which falls back to this one while its
 * database is unreachable.
 */
export class RateLimiter implements Limiter {
  private readonly keys = new Map<string, KeyState>();
  private readonly minuteMs: number;
  private readonly dayMs: number;
  private readonly now: Now;

  constructor(private readonly options: RateLimiterOptions) {
    ({ minuteMs: this.minuteMs, dayMs: this.dayMs } = periodsFor(options.timeScale));
    this.now = options.now ?? Date.now;
  }

  /**
   * Admits one request of `key` expected to use about `estimatedTokens` (prompt + max completion).
   * Consumes one request on success; tokens are charged later with `charge`. Throws `rate_limited`
   * (requests or tokens per minute) or `quota_exceeded` (tokens per day), with `details.retryAfterSeconds`.
   */
  async admit(key: KeyLimits, estimatedTokens: number): Promise<RateLimitStatus> {
    const state = this.stateOf(key);
    if (state.seed) await state.seed;
    const now = this.now();
    this.rollDay(state, now);
    const estimate = Math.max(0, Math.ceil(estimatedTokens));

    if (key.tokensPerDay !== null) {
      // Require room for the estimate (capped at the quota, so one big request can still run on a fresh day).
      const need = Math.max(1, Math.min(estimate, key.tokensPerDay));
      if (key.tokensPerDay - state.dayUsed < need) {
        const retryMs = (state.day + 1) * this.dayMs - now;
        throw limitError(
          "quota_exceeded",
          `daily token quota of ${key.tokensPerDay} exhausted for key ${key.id}`,
          retryMs,
          {
            limit: "tokens_per_day",
            quota: key.tokensPerDay,
            used: state.dayUsed,
          },
        );
      }
    }
    if (state.requests && state.requests.levelAt(now) < 1) {
      const retryMs = state.requests.msUntil(1, now);
      throw limitError(
        "rate_limited",
        `rate limit of ${key.rpm} requests per minute reached for key ${key.id}`,
        retryMs,
        {
          limit: "requests",
        },
      );
    }
    if (state.tokens) {
      const need = Math.max(1, Math.min(estimate, state.tokens.capacity));
      if (state.tokens.levelAt(now) < need) {
        const retryMs = state.tokens.msUntil(need, now);
        throw limitError(
          "rate_limited",
          `rate limit of ${key.tpm} tokens per minute reached for key ${key.id}`,
          retryMs,
          {
            limit: "tokens",
            estimatedTokens: estimate,
          },
        );
      }
    }
    state.requests?.take(1, now);
    return this.statusOf(key);
  }

  /** Charges actual tokens used (prompt + completion) after a request; unknown keys are ignored. */
  charge(keyId: string, tokens: number): void {
    const state = this.keys.get(keyId);
    if (!state || !(tokens > 0)) return;
    const now = this.now();
    this.rollDay(state, now);
    state.tokens?.take(tokens, now);
    state.dayUsed += tokens;
  }

  /** The current state of every limit of `key` (for `x-ratelimit-*` headers). */
  statusOf(key: KeyLimits): RateLimitStatus {
    const state = this.stateOf(key);
    const now = this.now();
    this.rollDay(state, now);
    const out: RateLimitStatus = {};
    if (state.requests) out.requests = bucketState(state.requests, now);
    if (state.tokens) out.tokens = bucketState(state.tokens, now);
    if (key.tokensPerDay !== null) {
      out.daily = {
        limit: key.tokensPerDay,
        remaining: Math.max(0, Math.floor(key.tokensPerDay - state.dayUsed)),
        resetMs: (state.day + 1) * this.dayMs - now,
      };
    }
    return out;
  }

  /** Drops the state of a key (after revoke/rotate-with-new-limits). */
  forget(keyId: string): void {
    this.keys.delete(keyId);
  }

  private stateOf(key: KeyLimits): KeyState {
    let state = this.keys.get(key.id);
    const now = this.now();
    if (!state) {
      state = { rpm: null, tpm: null, day: Math.floor(now / this.dayMs), dayUsed: 0 };
      this.keys.set(key.id, state);
      this.seedToday(key.id, state, now);
    }
    // Limits come from the key record; rebuild a bucket only when its limit changed.
    if (state.rpm !== key.rpm) {
      state.rpm = key.rpm;
      state.requests = key.rpm !== null ? new TokenBucket(key.rpm, this.minuteMs, now) : undefined;
    }
    if (state.tpm !== key.tpm) {
      state.tpm = key.tpm;
      state.tokens = key.tpm !== null ? new TokenBucket(key.tpm, this.minuteMs, now) : undefined;
    }
    return state;
  }

  private rollDay(state: KeyState, now: number): void {
    const day = Math.floor(now / this.dayMs);
    if (day !== state.day) {
      state.day = day;
      state.dayUsed = 0;
    }
  }

  /**
   * Adds what the usage table already holds for today, once per key and process (real time only): after
   * that every charge of this process is counted in memory, so re-reading would count twice.
   */
  private seedToday(keyId: string, state: KeyState, now: number): void {
    const load = this.options.tokensUsedOn;
    if (!load || this.options.timeScale !== 1) return;
    const day = state.day;
    state.seed = load(keyId, utcDay(now)).then(
      (used) => {
        if (state.day === day) state.dayUsed += used;
      },
      () => undefined,
    );
  }
}

function bucketState(bucket: TokenBucket, now: number): LimitState {
  const level = bucket.levelAt(now);
  return {
    limit: bucket.capacity,
    remaining: Math.max(0, Math.floor(level)),
    resetMs: bucket.msUntil(bucket.capacity, now),
  };
}

export function limitError(
  code: "rate_limited" | "quota_exceeded",
  message: string,
  retryMs: number,
  details: Record<string, unknown>,
): LlmosError {
  const retryAfterSeconds = Math.max(0.001, Math.ceil(retryMs) / 1000);
  return new LlmosError(code, `${message}; retry after ${retryAfterSeconds.toFixed(3).replace(/\.?0+$/, "")} s`, {
    ...details,
    retryAfterSeconds,
  });
}
