export { KEY_SCOPES, hasScope, isKeyScope, normalizeScopes, type KeyScope } from "./scopes.js";
export { globToRegExp, modelAllowed, modelNameVariants } from "./model-glob.js";
export { KEY_PREFIX, formatKey, hashSecret, parseKey } from "./key-secret.js";
export {
  AUDIT_ACTIONS,
  type Actor,
  type AuditAction,
  type AuditEntry,
  type AuditInput,
  type AuditResult,
  type KeyRecord,
  type UsageRow,
} from "./records.js";
export type {
  SecurityRepository,
  KeyStore,
  UsageStore,
  AuditStore,
  StoredKey,
  UsageDelta,
  UsageQuery,
  AuditQuery,
  ResponseStore,
  StoredResponse,
} from "./repository.js";
export { StoredResponses } from "./stored-responses.js";
export { SqliteSecurityRepository, migrate } from "./sqlite-repository.js";
export { SQLITE_MIGRATIONS, type Migration } from "./sqlite-migrations.js";
export { KeyService, toRecord, type CreateKeyInput, type IssuedKey } from "./key-service.js";
export {
  RateLimiter,
  TokenBucket,
  type Limiter,
  type KeyLimits,
  type LimitState,
  type RateLimitStatus,
  type RateLimiterOptions,
} from "./rate-limiter.js";
export { UsageRecorder, type UsageQueryInput } from "./usage-recorder.js";
export {
  SharedRateLimiter,
  type AdmitRequest,
  type AdmitResult,
  type ChargeDelta,
  type RateLimitStore,
} from "./shared-rate-limiter.js";
export { PostgresSecurityRepository, type KeyChangedEvent } from "./postgres-repository.js";
export { PostgresRateLimitStore } from "./postgres-rate-limits.js";
export { POSTGRES_MIGRATIONS, POSTGRES_RATE_LIMIT_MIGRATIONS } from "./postgres-migrations.js";
export { CachedKeyStore, type CachedKeyStoreOptions } from "./cached-key-store.js";
export { AuditLog, type AuditLogQuery } from "./audit-log.js";
export { AuthFailureLimiter, type AuthFailureLimiterOptions } from "./auth-failure-limiter.js";
export { AdminToken, ADMIN_TOKEN_PREFIX } from "./admin-token.js";
export { assertSafeBind } from "./bind-safety.js";
export { isLoopbackAddress, isLoopbackHost } from "./loopback.js";
export { REDACT_PATHS } from "./redact.js";
export { SecurityService, type SecurityServiceOptions } from "./security-service.js";
export { silentLogger, type SecurityLogger } from "./logger.js";
export { periodsFor, utcDay } from "./time-scale.js";
export { ImportPolicy } from "./import-policy.js";
