import type { ApiKeyInfo, AuditEntry as WireAuditEntry, AuditResult, UsageRow } from "@llmos/protocol";

/** An API key as the API and CLI see it: never the secret nor its hash (the wire type). */
export type KeyRecord = ApiKeyInfo;

/** The audited actions. */
export const AUDIT_ACTIONS = [
  "key.create",
  "key.revoke",
  "key.rotate",
  "model.pull",
  "model.push",
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
  "request.cancel",
  "response.delete",
  "runner.oom",
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export type { AuditResult };

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

/** A stored audit entry (the wire type, with llmos' action names). */
export type AuditEntry = WireAuditEntry<AuditAction>;

/** Who performed an action (for the audit log). */
export interface Actor {
  keyId?: string | null;
  remoteAddress?: string | null;
}

/** Usage of one key on one model during one UTC day. `keyId` null = requests without a key (auth off / admin token). */
export type { UsageRow };
