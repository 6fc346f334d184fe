/** Wire types of the security admin API (`/api/keys`, `/api/usage`, `/api/audit`). */

/** What a key may do. `admin` implies every other scope. */
export type KeyScope = "inference" | "models:read" | "models:write" | "admin" | "metrics";

/** An API key as the API and CLI see it: never the secret nor its hash. */
export interface ApiKeyInfo {
  /** Public id (12 hex chars), part of the key string. */
  id: string;
  name: string;
  scopes: KeyScope[];
  /** Model allow-list (globs). `null` = every model. */
  models: string[] | null;
  /** Requests per minute; `null` = unlimited. */
  rpm: number | null;
  /** Tokens (prompt + completion) per minute; `null` = unlimited. */
  tpm: number | null;
  /** Tokens per UTC day; `null` = unlimited. */
  tokensPerDay: number | null;
  /** ISO-8601 times. */
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  rotatedAt: string | null;
  /** How the key string starts (`llmos_<id>_`), so a user can tell which key they hold. */
  prefix: string;
}

/** Result of creating or rotating a key: the secret is shown only here. */
export interface CreatedKey {
  key: ApiKeyInfo;
  /** The full key string to send as `Authorization: Bearer`. */
  secret: string;
}

/** Usage of one key on one model during one UTC day (`keyId` null: requests without a key). */
export interface UsageRow {
  keyId: string | null;
  model: string;
  /** `YYYY-MM-DD` (UTC). */
  day: string;
  promptTokens: number;
  completionTokens: number;
  requests: number;
}

/** Outcome of an audited action: done, failed, or refused by the security layer. */
export type AuditResult = "ok" | "error" | "denied";

/** One audit-log entry. */
export interface AuditEntry<Action extends string = string> {
  id: number;
  /** ISO-8601. */
  time: string;
  keyId: string | null;
  /** e.g. `key.create`, `model.delete`, `auth.failure_burst`. */
  action: Action;
  target: string | null;
  result: AuditResult;
  remoteAddress: string | null;
  details: Record<string, unknown> | null;
}
