import { homePaths } from "../config/config.js";
import { AdminToken } from "./admin-token.js";
import { AuditLog } from "./audit-log.js";
import { AuthFailureLimiter } from "./auth-failure-limiter.js";
import { KeyService } from "./key-service.js";
import { silentLogger, type SecurityLogger } from "./logger.js";
import { isLoopbackAddress } from "./loopback.js";
import { modelAllowed } from "./model-glob.js";
import { RateLimiter, type KeyLimits, type Limiter, type RateLimitStatus } from "./rate-limiter.js";
import { SharedRateLimiter, type RateLimitStore } from "./shared-rate-limiter.js";
import type { KeyRecord, UsageRow } from "./records.js";
import type { SecurityRepository } from "./repository.js";
import { SqliteSecurityRepository } from "./sqlite-repository.js";
import { StoredResponses } from "./stored-responses.js";
import type { Now } from "./time-scale.js";
import { UsageRecorder, type UsageQueryInput } from "./usage-recorder.js";

/** What `SecurityService.open` takes. */
export interface SecurityServiceOptions {
  /** SQLite file (`homePaths(home).database`). Ignored when `repository` is given. */
  databasePath: string;
  /**
   * LLMOS_HOME. When given, a fresh admin token is written to `<home>/admin.token` (0600); the daemon
   * passes it, a CLI opening the database directly should not (it would replace the daemon's token).
   */
  home?: string;
  /** Rate-limit period scale (config `rateLimitTimeScale`); default 1. */
  timeScale?: number;
  logger?: SecurityLogger;
  /** Failed-authentication limiter: failures per minute before a lock-out (default 20), lock-out minutes (default 5). */
  authFailures?: { maxFailures?: number; lockMinutes?: number };
  /** Delay before a usage batch is written; default 250 ms. */
  usageFlushDelayMs?: number;
  /** Another store (e.g. PostgreSQL for a cluster) instead of the SQLite file. */
  repository?: SecurityRepository;
  /** How long stored `/v1/responses` responses are kept, ms; default 30 days. */
  responsesTtlMs?: number;
  /** Where a cluster holds rate limits for every node (absent: this process limits on its own). */
  rateLimitStore?: RateLimitStore;
  /** Clock, for tests. */
  now?: Now;
}

/**
 * The security layer in one object: API keys, the local admin token, rate limits, usage accounting,
 * the audit log and the failed-authentication limiter. HTTP code uses this; it imports nothing from HTTP.
 */
export class SecurityService {
  private closed = false;

  private constructor(
    readonly repository: SecurityRepository,
    readonly keys: KeyService,
    readonly limiter: Limiter,
    readonly usageRecorder: UsageRecorder,
    readonly audit: AuditLog,
    readonly authFailures: AuthFailureLimiter,
    readonly adminToken: AdminToken | undefined,
    readonly logger: SecurityLogger,
    /** Stored `/v1/responses` responses, owned by the key that created them. */
    readonly responses: StoredResponses,
  ) {}

  /** Opens the database (creating and migrating it) and, when `home` is given, writes the admin token. */
  static async open(options: SecurityServiceOptions): Promise<SecurityService> {
    const logger = options.logger ?? silentLogger;
    const now = options.now ?? Date.now;
    const timeScale = options.timeScale ?? 1;
    const repository = options.repository ?? SqliteSecurityRepository.open(options.databasePath);
    try {
      const audit = new AuditLog(repository.audit, logger, now);
      const local = new RateLimiter({
        timeScale,
        now,
        tokensUsedOn: (keyId, day) => repository.usage.tokensOnDay(keyId, day),
      });
      const limiter: Limiter = options.rateLimitStore
        ? new SharedRateLimiter(options.rateLimitStore, local, { timeScale, logger })
        : local;
      const keys = new KeyService(repository.keys, audit, now, (id) => limiter.forget(id));
      await keys.init();
      const usageRecorder = new UsageRecorder(repository.usage, logger, now, options.usageFlushDelayMs ?? 250);
      const authFailures = new AuthFailureLimiter({ timeScale, now, ...options.authFailures }, audit);
      const adminToken = options.home !== undefined ? AdminToken.create(homePaths(options.home).adminToken) : undefined;
      const responses = new StoredResponses(repository.responses, options.responsesTtlMs ?? 30 * 86_400_000, now);
      return new SecurityService(
        repository,
        keys,
        limiter,
        usageRecorder,
        audit,
        authFailures,
        adminToken,
        logger,
        responses,
      );
    } catch (error) {
      await repository.close();
      throw error;
    }
  }

  /** True once any non-revoked key exists (cached; see `checkAuthEnabled`). */
  authEnabled(): boolean {
    return this.keys.authEnabled();
  }

  /** `authEnabled`, re-read from the store at most once a second (keys created by other processes count). */
  checkAuthEnabled(): Promise<boolean> {
    return this.keys.checkAuthEnabled();
  }

  /** The key of a presented secret; throws `unauthorized`. */
  authenticate(presented: string): Promise<KeyRecord> {
    return this.keys.authenticate(presented);
  }

  /** True when `presented` is this daemon's admin token AND the request comes from a loopback address. */
  isLocalAdmin(presented: string, remoteAddress: string | undefined): boolean {
    return this.adminToken !== undefined && isLoopbackAddress(remoteAddress) && this.adminToken.matches(presented);
  }

  /** True when `key` may use `model` (its allow-list, with and without `:latest`). */
  keyAllowsModel(key: Pick<KeyRecord, "models">, model: string): boolean {
    return modelAllowed(key.models, model);
  }

  /** Admits one inference request of `key` (throws `rate_limited` / `quota_exceeded`); see RateLimiter.admit. */
  admit(key: KeyLimits, estimatedTokens: number): Promise<RateLimitStatus> {
    return this.limiter.admit(key, estimatedTokens);
  }

  /** The key's current limits (for `x-ratelimit-*` headers). */
  rateLimitStatus(key: KeyLimits): RateLimitStatus {
    return this.limiter.statusOf(key);
  }

  /**
   * Records a finished inference request: charges the key's token buckets and daily quota with the
   * actual tokens and counts usage (written in batches). `keyId` null = a request without a key.
   */
  recordUsage(keyId: string | null, model: string, promptTokens: number, completionTokens: number): void {
    if (keyId !== null) this.limiter.charge(keyId, Math.max(0, promptTokens) + Math.max(0, completionTokens));
    this.usageRecorder.record(keyId, model, promptTokens, completionTokens);
  }

  /** Usage rows per key, model and UTC day. */
  usage(q: UsageQueryInput = {}): Promise<UsageRow[]> {
    return this.usageRecorder.usage(q);
  }

  /** Writes queued audit entries and usage counts. */
  async flush(): Promise<void> {
    await Promise.all([this.audit.flush(), this.usageRecorder.flush(), this.limiter.flush?.()]);
  }

  /** Flushes, removes the admin token file and closes the database. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.adminToken?.dispose();
    try {
      await Promise.all([this.audit.close(), this.usageRecorder.close(), this.limiter.close?.()]);
    } finally {
      await this.repository.close();
    }
  }
}
