import type { KeyScope } from "@llmos/protocol";
import { LlmosError } from "../errors.js";

/** Every permission an API key can carry. `admin` implies all others. */
export const KEY_SCOPES = [
  "inference",
  "models:read",
  "models:write",
  "admin",
  "metrics",
] as const satisfies readonly KeyScope[];

/** One permission of an API key (the wire type). */
export type { KeyScope };

/** True when `value` names a key scope. */
export function isKeyScope(value: unknown): value is KeyScope {
  return typeof value === "string" && (KEY_SCOPES as readonly string[]).includes(value);
}

/** True when a key with `granted` scopes may act with `required`; `admin` grants everything. */
export function hasScope(granted: readonly KeyScope[], required: KeyScope): boolean {
  return granted.includes("admin") || granted.includes(required);
}

/** Validates and de-duplicates a scope list given by a caller (throws `invalid_request`). */
export function normalizeScopes(scopes: readonly unknown[]): KeyScope[] {
  if (!Array.isArray(scopes) || scopes.length === 0) {
    throw new LlmosError("invalid_request", `a key needs at least one scope (${KEY_SCOPES.join(", ")})`);
  }
  const out: KeyScope[] = [];
  for (const s of scopes) {
    if (!isKeyScope(s))
      throw new LlmosError(
        "invalid_request",
        `unknown scope ${JSON.stringify(s)}; expected one of ${KEY_SCOPES.join(", ")}`,
      );
    if (!out.includes(s)) out.push(s);
  }
  return out;
}
