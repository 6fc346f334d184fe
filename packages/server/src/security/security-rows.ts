/**
 * The security tables' rows, the same in SQLite and PostgreSQL (portability rules in repository.ts): keys, daily
 * usage and audit entries mapped to and from records, and the WHERE clauses of their queries with each dialect's
 * placeholders. Both repositories go through here, so a record reads back the same from either.
 */
import type { AuditAction, AuditEntry, AuditResult, UsageRow } from "./records.js";
import type { AuditQuery, StoredKey, UsageQuery } from "./repository.js";

/** Requests without a key are stored under this key id (a primary key column cannot be NULL). */
export const NO_KEY = "";

export interface KeyRow {
  id: string;
  name: string;
  secret_hash: string;
  scopes: string;
  models: string | null;
  rpm: number | null;
  tpm: number | null;
  tokens_per_day: number | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  rotated_at: number | null;
}

export interface AuditRow {
  id: number;
  occurred_at: number;
  key_id: string | null;
  action: string;
  target: string | null;
  result: string;
  remote_address: string | null;
  details: string | null;
}

export interface UsageDbRow {
  key_id: string;
  model: string;
  day: string;
  prompt_tokens: number;
  completion_tokens: number;
  requests: number;
}

/** The columns of `api_keys`, in the order of `keyValues`. */
export const KEY_COLUMNS = [
  "id",
  "name",
  "secret_hash",
  "scopes",
  "models",
  "rpm",
  "tpm",
  "tokens_per_day",
  "created_at",
  "expires_at",
  "revoked_at",
  "rotated_at",
] as const satisfies ReadonlyArray<keyof KeyRow>;

export function toKeyRow(key: StoredKey): KeyRow {
  return {
    id: key.id,
    name: key.name,
    secret_hash: key.secretHash,
    scopes: JSON.stringify(key.scopes),
    models: key.models === null ? null : JSON.stringify(key.models),
    rpm: key.rpm,
    tpm: key.tpm,
    tokens_per_day: key.tokensPerDay,
    created_at: key.createdAt,
    expires_at: key.expiresAt,
    revoked_at: key.revokedAt,
    rotated_at: key.rotatedAt,
  };
}

/** A key row's values in `KEY_COLUMNS` order (positional parameters). */
export function keyValues(row: KeyRow): unknown[] {
  return KEY_COLUMNS.map((c) => row[c]);
}

export function fromKeyRow(row: KeyRow): StoredKey {
  return {
    id: row.id,
    name: row.name,
    secretHash: row.secret_hash,
    scopes: JSON.parse(row.scopes) as string[],
    models: row.models === null ? null : (JSON.parse(row.models) as string[]),
    rpm: row.rpm,
    tpm: row.tpm,
    tokensPerDay: row.tokens_per_day,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    rotatedAt: row.rotated_at,
  };
}

export function fromUsageRow(r: UsageDbRow): UsageRow {
  return {
    keyId: r.key_id === NO_KEY ? null : r.key_id,
    model: r.model,
    day: r.day,
    promptTokens: r.prompt_tokens,
    completionTokens: r.completion_tokens,
    requests: r.requests,
  };
}

export function fromAuditRow(r: AuditRow): AuditEntry {
  return {
    id: r.id,
    time: new Date(r.occurred_at).toISOString(),
    keyId: r.key_id,
    action: r.action as AuditAction,
    target: r.target,
    result: r.result as AuditResult,
    remoteAddress: r.remote_address,
    details: r.details === null ? null : (JSON.parse(r.details) as Record<string, unknown>),
  };
}

/** A WHERE clause (empty when nothing is asked) and its arguments. */
export interface Filter {
  where: string;
  args: unknown[];
}

/** `param(n)` writes the n-th placeholder (1-based): `?` in SQLite, `$n` in PostgreSQL. */
export type Placeholder = (n: number) => string;

function filter(conditions: Array<[string, unknown] | undefined>, param: Placeholder): Filter {
  const args: unknown[] = [];
  const parts: string[] = [];
  for (const c of conditions) {
    if (!c) continue;
    args.push(c[1]);
    parts.push(`${c[0]} ${param(args.length)}`);
  }
  return { where: parts.length ? `WHERE ${parts.join(" AND ")}` : "", args };
}

/** The rows of `usage_daily` a usage query asks for. */
export function usageFilter(q: UsageQuery, param: Placeholder): Filter {
  return filter(
    [
      q.sinceDay !== undefined ? ["day >=", q.sinceDay] : undefined,
      q.keyId !== undefined ? ["key_id =", q.keyId ?? NO_KEY] : undefined,
      q.model !== undefined ? ["model =", q.model] : undefined,
    ],
    param,
  );
}

/** The rows of `audit_log` an audit query asks for. */
export function auditFilter(q: AuditQuery, param: Placeholder): Filter {
  return filter(
    [
      q.since !== undefined ? ["occurred_at >=", q.since] : undefined,
      q.action !== undefined ? ["action =", q.action] : undefined,
    ],
    param,
  );
}

/** How many audit entries a query returns: its limit (default 100) within 1..10000. */
export function auditLimit(q: AuditQuery): number {
  return Math.min(10_000, Math.max(1, Math.floor(q.limit ?? 100)));
}
