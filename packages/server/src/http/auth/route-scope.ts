import type { AuditAction, KeyRecord } from "../../security/index.js";

/**
 * What a route requires. `public` = anyone (health probes); `peer` = signed node-to-node calls of a cluster only
 * (no API key, not even an admin one, nor the admin token); the others are key scopes (`admin` keys pass every
 * check). A route that declares no scope is refused: secure by default.
 */
export type RouteScope = "public" | "inference" | "models:read" | "models:write" | "admin" | "metrics" | "peer";

/** Every RouteScope, for validation and scanners. */
export const ROUTE_SCOPES: readonly RouteScope[] = [
  "public",
  "inference",
  "models:read",
  "models:write",
  "admin",
  "metrics",
  "peer",
];

/** Who is making a request, as settled by the auth hook. */
export interface LlmosAuth {
  /** The API key used; null without one (auth off from loopback, the local admin token, public routes). */
  key: KeyRecord | null;
  /** The connection comes from a loopback address and not through a proxy. */
  local: boolean;
  /** How the request was admitted. */
  via: "key" | "admin-token" | "no-auth-local" | "public" | "peer";
  /** The peer address the decision was made on. */
  remoteAddress: string;
}

declare module "fastify" {
  interface FastifyContextConfig {
    /** What the route requires (see RouteScope). Routes without one are refused. */
    scope?: RouteScope;
    /** Audit this route's outcome under this action (written after the response). */
    audit?: AuditAction;
  }
  interface FastifyRequest {
    /** Set by the auth hook on every routed request; null only before it ran (or on 404s). */
    llmosAuth: LlmosAuth | null;
  }
}
