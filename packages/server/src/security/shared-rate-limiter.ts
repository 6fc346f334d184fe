import { LlmosError } from "../errors.js";
import type { SecurityLogger } from "./logger.js";
import { limitError, type KeyLimits, type Limiter, type RateLimiter, type RateLimitStatus } from "./rate-limiter.js";
import { periodsFor } from "./time-scale.js";
import { WriteQueue } from "./write-queue.js";

/** One admission as the store decides it. */
export interface AdmitRequest {
  keyId: string;
  rpm: number | null;
  tpm: number | null;
  tokensPerDay: number | null;
  estimate: number;
  minuteMs: number;
  dayMs: number;
}

/** What the store answered: admitted or which limit refused, and the levels after the decision. */
export interface AdmitResult {
  ok: boolean;
  limited: "requests" | "tokens" | "tokens_per_day" | null;
  retryMs: number;
  requestsLevel: number | null;
  tokensLevel: number | null;
  dayUsed: number;
  dayResetMs: number;
}

/** Tokens one key used, charged in a batch (the store applies the key's own limits). */
export interface ChargeDelta {
  keyId: string;
  tokens: number;
}

/** Where cluster-wide limit state lives (PostgreSQL: postgres-rate-limits.ts). */
export interface RateLimitStore {
  /** Checks the daily quota, the requests bucket and the tokens bucket, and takes one request, atomically. */
  admit(request: AdmitRequest): Promise<AdmitResult>;
  /** Adds the tokens of finished requests (one transaction for the batch). */
  charge(deltas: readonly ChargeDelta[], periods: { minuteMs: number; dayMs: number }): Promise<void>;
}

export interface SharedRateLimiterOptions {
  timeScale: number;
  logger: SecurityLogger;
  /** Delay before charged tokens are written (they are summed per key meanwhile). Default 250 ms. */
  chargeFlushMs?: number;
}

/**
 * A key's limits held for the whole cluster: every admission is decided by the store in one atomic step (exact for
 * requests per minute), tokens are charged after the fact in batches (so a node's view of tokens per minute and per
 * day lags the others' by at most one flush interval, see docs/cluster.md). While the store is unreachable, this
 * node falls back to its own in-memory limiter (limits then hold per node).
 */
export class SharedRateLimiter implements Limiter {
  private readonly minuteMs: number;
  private readonly dayMs: number;
  private readonly known = new Map<string, RateLimitStatus>();
  private readonly charges: WriteQueue<ChargeDelta>;
  private degraded = false;

  constructor(
    private readonly store: RateLimitStore,
    private readonly local: RateLimiter,
    private readonly options: SharedRateLimiterOptions,
  ) {
    ({ minuteMs: this.minuteMs, dayMs: this.dayMs } = periodsFor(options.timeScale));
    this.charges = new WriteQueue(
      (batch) => this.store.charge(sumByKey(batch), { minuteMs: this.minuteMs, dayMs: this.dayMs }),
      options.logger,
      "rate-limit charges",
      options.chargeFlushMs ?? 250,
    );
  }

  async admit(key: KeyLimits, estimatedTokens: number): Promise<RateLimitStatus> {
    if (key.rpm === null && key.tpm === null && key.tokensPerDay === null) return {};
    const estimate = Math.max(0, Math.ceil(estimatedTokens));
    let result: AdmitResult;
    try {
      result = await this.store.admit({
        keyId: key.id,
        rpm: key.rpm,
        tpm: key.tpm,
        tokensPerDay: key.tokensPerDay,
        estimate,
        minuteMs: this.minuteMs,
        dayMs: this.dayMs,
      });
      if (this.degraded) this.options.logger.warn({}, "cluster rate limits are back");
      this.degraded = false;
    } catch (error) {
      if (!(error instanceof LlmosError && error.code === "unavailable")) throw error;
      if (!this.degraded) this.options.logger.warn({}, "cluster database unreachable: rate limits hold per node");
      this.degraded = true;
      return this.local.admit(key, estimatedTokens);
    }
    const status = this.statusFrom(key, result);
    this.known.set(key.id, status);
    if (result.ok) return status;
    const retryMs = result.retryMs;
    if (result.limited === "tokens_per_day")
      throw limitError(
        "quota_exceeded",
        `daily token quota of ${key.tokensPerDay} exhausted for key ${key.id}`,
        retryMs,
        {
          limit: "tokens_per_day",
          quota: key.tokensPerDay,
          used: result.dayUsed,
        },
      );
    if (result.limited === "requests")
      throw limitError(
        "rate_limited",
        `rate limit of ${key.rpm} requests per minute reached for key ${key.id}`,
        retryMs,
        {
          limit: "requests",
        },
      );
    throw limitError("rate_limited", `rate limit of ${key.tpm} tokens per minute reached for key ${key.id}`, retryMs, {
      limit: "tokens",
      estimatedTokens: estimate,
    });
  }

  charge(keyId: string, tokens: number): void {
    if (!(tokens > 0)) return;
    this.local.charge(keyId, tokens);
    // Charged whichever node admitted the request: the store knows the key's limits (keys without any cost nothing).
    this.charges.push({ keyId, tokens: Math.round(tokens) });
  }

  statusOf(key: KeyLimits): RateLimitStatus {
    return this.degraded ? this.local.statusOf(key) : (this.known.get(key.id) ?? this.local.statusOf(key));
  }

  forget(keyId: string): void {
    this.known.delete(keyId);
    this.local.forget(keyId);
  }

  flush(): Promise<void> {
    return this.charges.flush();
  }

  close(): Promise<void> {
    return this.charges.close();
  }

  private statusFrom(key: KeyLimits, r: AdmitResult): RateLimitStatus {
    const out: RateLimitStatus = {};
    const bucket = (capacity: number, level: number) => ({
      limit: capacity,
      remaining: Math.max(0, Math.floor(level)),
      resetMs: Math.max(0, ((capacity - level) * this.minuteMs) / capacity),
    });
    if (key.rpm !== null && r.requestsLevel !== null) out.requests = bucket(key.rpm, r.requestsLevel);
    if (key.tpm !== null && r.tokensLevel !== null) out.tokens = bucket(key.tpm, r.tokensLevel);
    if (key.tokensPerDay !== null)
      out.daily = {
        limit: key.tokensPerDay,
        remaining: Math.max(0, Math.floor(key.tokensPerDay - r.dayUsed)),
        resetMs: r.dayResetMs,
      };
    return out;
  }
}

/** One delta per key (a batch holds every request that ended during the flush delay). */
function sumByKey(batch: ChargeDelta[]): ChargeDelta[] {
  const byKey = new Map<string, ChargeDelta>();
  for (const d of batch) {
    const sum = byKey.get(d.keyId);
    if (sum) sum.tokens += d.tokens;
    else byKey.set(d.keyId, { ...d });
  }
  return [...byKey.values()];
}
