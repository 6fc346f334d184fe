import type { ErrorCode } from "@llmos/protocol";

/**
 * Codes the SDK produces itself, for failures that never reached a server response.
 * `connection_error`: the request could not be sent or the connection broke;
 * `timeout`: the client-side timeout expired; `aborted`: the caller's AbortSignal fired;
 * `invalid_response`: the server answered with something the SDK could not understand;
 * `invalid_output`: the model's output did not parse as the JSON that was asked for.
 */
export type ClientErrorCode = "connection_error" | "timeout" | "aborted" | "invalid_response" | "invalid_output";

/** Any code an {@link LlmosError} can carry: a server code from `@llmos/protocol` or a {@link ClientErrorCode}. */
export type LlmosErrorCode = ErrorCode | ClientErrorCode;

/** Fields common to every SDK error. */
export interface LlmosErrorInit {
  /** Stable machine-readable code. */
  code: LlmosErrorCode;
  /** HTTP status of the response, when there was one. */
  status?: number;
  /** Value of the response's `x-request-id` header, when there was one. */
  requestId?: string;
  /** Extra data from the server's error body (`error.details`). */
  details?: Record<string, unknown>;
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * Base class of every error the SDK throws. Switch on `code` (stable) or use `instanceof` on a subclass;
 * the message is for humans.
 */
export class LlmosError extends Error {
  /** Stable machine-readable code (see `@llmos/protocol` `ERROR_CODES`, plus {@link ClientErrorCode}). */
  readonly code: LlmosErrorCode;
  /** HTTP status, or `undefined` when no response was received. */
  readonly status: number | undefined;
  /** The server's `x-request-id` for this request, useful in bug reports and audit logs. */
  readonly requestId: string | undefined;
  /** Extra data from the error body, e.g. `{ retryAfterMs }` or limits that were hit. */
  readonly details: Record<string, unknown> | undefined;

  /** @param message - human-readable description. */
  constructor(message: string, init: LlmosErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.code = init.code;
    this.status = init.status;
    this.requestId = init.requestId;
    this.details = init.details;
  }
}

/** 400: the request was malformed or invalid (bad parameters, bad model name, bad file). */
export class BadRequestError extends LlmosError {}
/** 400 `context_length_exceeded`: prompt plus requested tokens do not fit the model's context. */
export class ContextLengthExceededError extends BadRequestError {}
/** 401: missing, unknown, expired or revoked API key. */
export class AuthenticationError extends LlmosError {}
/** 403: the key lacks the scope or model permission for this request. */
export class PermissionDeniedError extends LlmosError {}
/** 404: the resource does not exist. */
export class NotFoundError extends LlmosError {}
/** 404 `model_not_found`: no model by that name. */
export class ModelNotFoundError extends NotFoundError {}
/** 409: conflicts with the current state (e.g. the name is taken, the model is busy). */
export class ConflictError extends LlmosError {}
/** 413: the request body is larger than the server accepts. */
export class PayloadTooLargeError extends LlmosError {}
/** 429: rate limit hit. `retryAfterMs` says when to try again, when the server said so. */
export class RateLimitError extends LlmosError {
  /** Milliseconds the server asked to wait (`Retry-After`), when given. */
  retryAfterMs: number | undefined;
}
/** 429 `quota_exceeded`: the key's token quota is spent; retrying soon will not help. */
export class QuotaExceededError extends RateLimitError {}
/** 5xx: the server failed. */
export class InternalServerError extends LlmosError {}
/** 503: the server cannot take the request right now. */
export class ServiceUnavailableError extends InternalServerError {}
/** 503 `queue_full`: the model's request queue is full. */
export class QueueFullError extends ServiceUnavailableError {}
/** 504 `queue_timeout`: the request waited in the queue for too long. */
export class QueueTimeoutError extends InternalServerError {}
/** 507 `insufficient_memory`: the model does not fit the memory budget. */
export class InsufficientMemoryError extends InternalServerError {}
/** The request could not be sent or the connection broke (no usable response). */
export class APIConnectionError extends LlmosError {}
/** The client-side timeout expired before the server answered. */
export class APITimeoutError extends APIConnectionError {}
/** The caller aborted the request through its AbortSignal. */
export class APIUserAbortError extends LlmosError {}
/** The model's output was not valid JSON for a structured-output request. */
export class OutputParseError extends LlmosError {
  /** The raw text the model produced. */
  readonly text: string;
  /** @param text - the raw model output that failed to parse. */
  constructor(message: string, text: string, init: Omit<LlmosErrorInit, "code">) {
    super(message, { ...init, code: "invalid_output" });
    this.text = text;
  }
}

type ErrorClass = new (message: string, init: LlmosErrorInit) => LlmosError;

/** Status of each server code; `satisfies` makes the compiler flag a code added in protocol but not here. */
const CODE_STATUS = {
  invalid_request: 400,
  invalid_model_name: 400,
  invalid_model_file: 400,
  invalid_reference: 400,
  context_length_exceeded: 400,
  imatrix_required: 400,
  imatrix_mismatch: 400,
  requantize_not_allowed: 400,
  unauthorized: 401,
  forbidden: 403,
  model_not_found: 404,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  quota_exceeded: 429,
  client_closed: 499,
  internal: 500,
  runner_crashed: 502,
  model_load_failed: 500,
  queue_full: 503,
  unavailable: 503,
  insufficient_memory: 507,
  queue_timeout: 504,
  upstream_error: 502,
  insufficient_storage: 507,
} as const satisfies Record<ErrorCode, number>;

const CLASS_BY_CODE: Partial<Record<LlmosErrorCode, ErrorClass>> = {
  context_length_exceeded: ContextLengthExceededError,
  model_not_found: ModelNotFoundError,
  quota_exceeded: QuotaExceededError,
  queue_full: QueueFullError,
  queue_timeout: QueueTimeoutError,
  insufficient_memory: InsufficientMemoryError,
  payload_too_large: PayloadTooLargeError,
};

function classForStatus(status: number): ErrorClass {
  if (status === 400 || status === 415 || status === 422) return BadRequestError;
  if (status === 401) return AuthenticationError;
  if (status === 403) return PermissionDeniedError;
  if (status === 404) return NotFoundError;
  if (status === 409) return ConflictError;
  if (status === 413) return PayloadTooLargeError;
  if (status === 429) return RateLimitError;
  if (status === 503) return ServiceUnavailableError;
  if (status >= 500) return InternalServerError;
  return LlmosError;
}

function isServerCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.prototype.hasOwnProperty.call(CODE_STATUS, code);
}

/** The HTTP status a server error code maps to, or undefined for an unknown code. */
export function statusForErrorCode(code: string): number | undefined {
  return isServerCode(code) ? CODE_STATUS[code] : undefined;
}

function fallbackCode(status: number): ErrorCode {
  if (status === 400) return "invalid_request";
  if (status === 401) return "unauthorized";
  if (status === 403) return "forbidden";
  if (status === 404) return "not_found";
  if (status === 409) return "conflict";
  if (status === 413) return "payload_too_large";
  if (status === 429) return "rate_limited";
  if (status === 503) return "unavailable";
  if (status === 504) return "queue_timeout";
  if (status >= 500) return "internal";
  return "invalid_request";
}

/** What the SDK knows about a failed response. */
export interface ErrorSource {
  /** HTTP status, if a response arrived (for a mid-stream error, derived from the code). */
  status?: number;
  /** The parsed response body, if any. */
  body?: unknown;
  /** `x-request-id` header. */
  requestId?: string;
  /** `Retry-After` in milliseconds, if the server sent one. */
  retryAfterMs?: number;
}

/**
 * Builds the typed error for a server error body (native `{error:{code,message,details}}`, OpenAI
 * `{error:{message,type,param,code}}` or Ollama `{error:"..."}`) and/or HTTP status.
 * The most specific class wins: per-code class, then per-status class, then {@link LlmosError}.
 */
export function errorFromResponse(source: ErrorSource): LlmosError {
  const err = (source.body as { error?: unknown } | undefined)?.error;
  let code: LlmosErrorCode | undefined;
  let message: string | undefined;
  let details: Record<string, unknown> | undefined;
  if (typeof err === "string") {
    message = err;
  } else if (err && typeof err === "object") {
    const e = err as { code?: unknown; message?: unknown; details?: unknown; param?: unknown };
    if (isServerCode(e.code)) code = e.code;
    if (typeof e.message === "string") message = e.message;
    if (e.details && typeof e.details === "object") details = e.details as Record<string, unknown>;
    if (typeof e.param === "string") details = { ...details, param: e.param };
  }
  const status = source.status ?? (code ? CODE_STATUS[code as ErrorCode] : undefined);
  if (!code) code = status === undefined ? "invalid_response" : fallbackCode(status);
  const Cls = CLASS_BY_CODE[code] ?? (status === undefined ? LlmosError : classForStatus(status));
  const error = new Cls(`${message ?? `HTTP ${status ?? "error"}`}`, {
    code,
    status,
    requestId: source.requestId,
    details,
  });
  if (error instanceof RateLimitError) {
    error.retryAfterMs = source.retryAfterMs ?? numberOrUndefined(details?.["retryAfterMs"]);
  }
  return error;
}

function numberOrUndefined(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}
