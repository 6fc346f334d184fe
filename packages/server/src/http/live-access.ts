import type { ActiveRequest, DaemonEvent, DaemonSnapshot } from "@llmos/protocol";
import type { FastifyRequest } from "fastify";
import { hasScope, modelAllowed } from "../security/index.js";
import "./auth/route-scope.js";

export type LiveAccess = DaemonSnapshot["access"] & {
  keyId: string | null;
  /** The key's model allow-list (null: every model). */
  models: readonly string[] | null;
};

/**
 * What the caller of a live view may see and press, from how the auth hook admitted it: a key by its scopes; the
 * local admin token everything; a loopback caller while no key exists everything but admin (admin views ask for
 * the admin token or an admin key, as the admin routes do).
 */
export function liveAccessOf(request: FastifyRequest): LiveAccess {
  const auth = request.llmosAuth;
  if (auth?.via === "key" && auth.key) {
    const s = auth.key.scopes;
    return {
      admin: hasScope(s, "admin"),
      modelsWrite: hasScope(s, "models:write"),
      modelsRead: hasScope(s, "models:read"),
      inference: hasScope(s, "inference"),
      metrics: hasScope(s, "metrics"),
      keyId: auth.key.id,
      models: auth.key.models ?? null,
    };
  }
  const admin = auth?.via === "admin-token";
  return { admin, modelsWrite: true, modelsRead: true, inference: true, metrics: true, keyId: null, models: null };
}

/** Requests a caller may see: an admin (or the local caller without keys) all, a key only its own. */
export function visibleRequest(access: LiveAccess, r: Pick<ActiveRequest, "keyId">): boolean {
  return access.admin || access.keyId === null || r.keyId === access.keyId;
}

/** Models a caller may see: with `models:read`, those its key's allow-list names (as `GET /api/ps` shows them). */
export function visibleModel(access: LiveAccess, model: string): boolean {
  return access.modelsRead && modelAllowed(access.models, model);
}

/** Whether an event goes to a caller: logs to admins, model events as above, requests as above. */
export function visibleEvent(access: LiveAccess, event: DaemonEvent): boolean {
  switch (event.type) {
    case "log":
      return access.admin;
    case "request.queued":
    case "request.started":
    case "request.finished":
      return visibleRequest(access, event.data);
    case "snapshot":
      return true;
    default:
      return visibleModel(access, event.data.model);
  }
}
