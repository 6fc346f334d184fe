import type { FastifyRequest } from "fastify";

const BODY_FIELDS = ["model", "name", "from", "source", "destination"] as const;
const PARAM_FIELDS = ["name", "model"] as const;

/**
 * The model names a request refers to, for the per-key allow-list: body fields `model`, `name`,
 * `from`, `source`, `destination` and route params `:name` / `:model` (de-duplicated, non-empty strings).
 */
export function modelsOfRequest(request: FastifyRequest): string[] {
  const out: string[] = [];
  const add = (v: unknown) => {
    if (typeof v === "string" && v.trim() !== "" && !out.includes(v.trim())) out.push(v.trim());
  };
  const body = request.body;
  if (body && typeof body === "object" && !Array.isArray(body)) {
    for (const f of BODY_FIELDS) add((body as Record<string, unknown>)[f]);
  }
  const params = request.params;
  if (params && typeof params === "object") {
    for (const f of PARAM_FIELDS) add((params as Record<string, unknown>)[f]);
  }
  return out;
}
