import type { FastifyRequest } from "fastify";
import { LlmosError } from "../errors.js";

function isEmptyObject(v: unknown): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;
}

/** preValidation hook for routes that take no body: a missing body or `{}` is fine, anything else is refused. */
export async function noBody(request: FastifyRequest): Promise<void> {
  if (request.body === undefined || isEmptyObject(request.body)) return;
  throw new LlmosError("invalid_request", `${request.method} ${request.routeOptions.url} takes no request body`);
}

/** preValidation hook for routes whose body is optional: a missing body validates as `{}`. */
export async function optionalBody(request: FastifyRequest): Promise<void> {
  if (request.body === undefined) request.body = {};
}

/**
 * onRequest hook of the Ollama routes: a body sent without `content-type` is read as JSON, as Ollama does (its
 * documentation and most scripts use `curl -d '{...}'`). Safe because browser pages cannot reach these routes:
 * a cross-site request carries an Origin, which the origin policy refuses.
 */
export async function jsonWithoutContentType(request: FastifyRequest): Promise<void> {
  const h = request.headers;
  if (h["content-type"] !== undefined) return;
  const hasBody =
    h["transfer-encoding"] !== undefined || (h["content-length"] !== undefined && h["content-length"] !== "0");
  if (hasBody && !request.url.startsWith("/api/blobs/")) h["content-type"] = "application/json";
}
