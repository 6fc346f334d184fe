import type { FastifyRequest } from "fastify";
import { modelAllowed } from "../../security/index.js";

/**
 * True when the request's caller may see `model`: a key with a model allow-list sees only those models in
 * listings (`/api/tags`, `/v1/models`, `/api/models`, `/api/ps`); everyone else sees everything.
 */
export function callerMaySee(request: FastifyRequest, model: string): boolean {
  const patterns = request.llmosAuth?.key?.models;
  return patterns == null || modelAllowed(patterns, model);
}
