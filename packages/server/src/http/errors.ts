import { ERROR_CODES, type ErrorCode } from "@llmos/protocol";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { LlmosError } from "../errors.js";

/** Which API family's error shape a route answers with. */
export type ErrorStyle = "native" | "openai" | "ollama";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Error body shape for this route; default by URL (`/v1/*` -> openai, else native). */
    errorStyle?: ErrorStyle;
  }
}

/** Turns anything thrown into an LlmosError (the single place that maps errors). */
export function toLlmosError(error: unknown): LlmosError {
  if (error instanceof LlmosError) return error;
  const fe = error as FastifyError & { validationContext?: string };
  if (fe && typeof fe === "object" && "code" in fe) {
    switch (fe.code) {
      case "FST_ERR_VALIDATION": {
        // The field at fault, as OpenAI's `param` names it (`messages.0.content`).
        const where = (fe as { validation?: Array<{ instancePath?: string }> }).validation?.[0]?.instancePath;
        const param = where ? where.replace(/^\//, "").replace(/\//g, ".") : undefined;
        return new LlmosError(
          "invalid_request",
          `invalid ${fe.validationContext ?? "request"}: ${fe.message.replace(/^(body|querystring|params|headers)\/?/, "")}`,
          param ? { param } : undefined,
        );
      }
      case "FST_ERR_CTP_BODY_TOO_LARGE":
        return new LlmosError("payload_too_large", "request body is too large");
      case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
        return new LlmosError("unsupported_media_type", "unsupported content type: send application/json");
      case "FST_ERR_CTP_EMPTY_JSON_BODY":
        return new LlmosError("invalid_request", "request body is empty: send a JSON object");
      case "FST_ERR_CTP_INVALID_JSON_BODY":
      case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
        return new LlmosError("invalid_request", `malformed request body: ${fe.message}`);
    }
    if (fe instanceof SyntaxError || fe.statusCode === 400)
      return new LlmosError("invalid_request", `malformed request: ${fe.message}`);
    if (fe.statusCode === 413) return new LlmosError("payload_too_large", fe.message);
    if (fe.statusCode === 415) return new LlmosError("unsupported_media_type", fe.message);
  }
  return new LlmosError("internal", "internal error", undefined, { cause: error });
}

export function errorStyleOf(request: FastifyRequest): ErrorStyle {
  const style = request.routeOptions?.config?.errorStyle;
  if (style) return style;
  return request.url.startsWith("/v1/") ? "openai" : "native";
}

/** The error body in the shape of the route's API family. */
export function errorBody(error: LlmosError, style: ErrorStyle): unknown {
  switch (style) {
    case "openai":
      return {
        error: {
          message: error.message,
          type: ERROR_CODES[error.code].openaiType,
          param: (error.details?.param as string) ?? null,
          code: error.code,
        },
      };
    case "ollama":
      return { error: ollamaMessage(error), code: error.code };
    default:
      return {
        error: { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) },
      };
  }
}

/**
 * Ollama's own words where clients match on them: an input longer than the context is "the input length exceeds
 * the context length" (the numbers are in the OpenAI-style message of the same error on /v1).
 */
function ollamaMessage(error: LlmosError): string {
  return error.code === "context_length_exceeded" ? "the input length exceeds the context length" : error.message;
}

/** Sends an error reply, with Retry-After when the error carries one. */
export function sendError(request: FastifyRequest, reply: FastifyReply, error: LlmosError): FastifyReply {
  const retry = error.details?.retryAfterSeconds;
  if (typeof retry === "number") reply.header("retry-after", String(Math.max(1, Math.ceil(retry))));
  return reply
    .code(error.status)
    .type("application/json")
    .send(errorBody(error, errorStyleOf(request)));
}

/** A mid-stream error line for SSE/NDJSON streams. */
export function streamErrorPayload(error: unknown, style: ErrorStyle): unknown {
  return errorBody(toLlmosError(error), style);
}

export function isCode(error: unknown, code: ErrorCode): boolean {
  return error instanceof LlmosError && error.code === code;
}
