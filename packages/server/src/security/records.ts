import type { KeyScope } from "./scopes.js";

/** An API key as the API and CLI see it: never the secret nor its hash. */
export interface KeyRecord {
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

/** The audited actions. */
export const AUDIT_ACTIONS = [
  "key.create",
  "key.revoke",
  "key.rotate",
  "model.pull",
  "model.create",
  "model.delete",
  "model.copy",
  "model.import",
  "model.load",
  "model.unload",
  "store.verify",
  "store.gc",
  "config.change",
  "auth.failure_burst",
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** Outcome of an audited action: done, failed, or refused by the security layer. */
export type AuditResult = "ok" | "error" | "denied";

/** What a caller records. `time` defaults to now. */
export interface AuditInput {
  action: AuditAction;
  result: AuditResult;
  keyId?: string | null;
  target?: string | null;
  remoteAddress?: string | null;
  details?: Record<string, unknown> | null;
  /** Epoch ms; default `Date.now()` at record time. */
  time?: number;
}

/** A stored audit entry. */
export interface AuditEntry {
  id: number;
  /** ISO-8601. */
  time: string;
  keyId: string | null;
  action: AuditAction;
  target: string | null;
  result: AuditResult;
  remoteAddress: string | null;
  details: Record<string, unknown> | null;
}

/** Who performed an action (for the audit log). */
export interface Actor {
  keyId?: string | null;
  remoteAddress?: string | null;
}

/** Usage of one key on one model during one UTC day. `keyId` null = requests without a key (auth off / admin token). */
export interface UsageRow {
  keyId: string | null;
  model: string;
  /** UTC day, `YYYY-MM-DD`. */
  day: string;
  promptTokens: number;
  completionTokens: number;
  requests: number;
}
