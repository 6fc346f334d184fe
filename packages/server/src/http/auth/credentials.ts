import type { FastifyRequest } from "fastify";

/** A credential found on a request: a value, or a malformed Authorization header. */
export type PresentedCredential = { value: string } | { malformed: string };

/**
 * Reads `Authorization: Bearer <key>` (preferred) or `x-api-key: <key>`. An Authorization header of
 * another scheme, or an empty one, counts as a malformed credential (a failed attempt), not as none.
 */
export function presentedCredential(request: FastifyRequest): PresentedCredential | undefined {
  const authorization = request.headers.authorization;
  if (typeof authorization === "string" && authorization.length > 0) {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    return m?.[1] ? { value: m[1] } : { malformed: "Authorization header must be `Bearer <key>`" };
  }
  const apiKey = request.headers["x-api-key"];
  const value = Array.isArray(apiKey) ? apiKey[0] : apiKey;
  if (typeof value === "string" && value.trim().length > 0) return { value: value.trim() };
  return undefined;
}

/** Headers a reverse proxy adds; a request carrying one is not treated as local even from 127.0.0.1. */
const PROXY_HEADERS = ["x-forwarded-for", "forwarded", "x-real-ip"] as const;

/**
 * The peer address of the TCP connection. Deliberately not `request.ip`: with `trustProxy` that comes
 * from X-Forwarded-For, which any client can forge to look local.
 */
export function peerAddress(request: FastifyRequest): string {
  return request.socket?.remoteAddress ?? request.ip ?? "";
}

/** True when a proxy header is present (the real client is elsewhere). */
export function isProxied(request: FastifyRequest): boolean {
  return PROXY_HEADERS.some((h) => request.headers[h] !== undefined);
}
