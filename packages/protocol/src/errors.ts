/**
 * Stable error codes of llmos. Each code maps to exactly one HTTP status and one OpenAI error `type`.
 * Clients switch on `code`; the message is for humans and may change.
 */
export const ERROR_CODES = {
  invalid_request: { status: 400, openaiType: "invalid_request_error" },
  invalid_model_name: { status: 400, openaiType: "invalid_request_error" },
  invalid_model_file: { status: 400, openaiType: "invalid_request_error" },
  invalid_reference: { status: 400, openaiType: "invalid_request_error" },
  context_length_exceeded: { status: 400, openaiType: "invalid_request_error" },
  imatrix_required: { status: 400, openaiType: "invalid_request_error" },
  imatrix_mismatch: { status: 400, openaiType: "invalid_request_error" },
  requantize_not_allowed: { status: 400, openaiType: "invalid_request_error" },
  unauthorized: { status: 401, openaiType: "authentication_error" },
  forbidden: { status: 403, openaiType: "permission_error" },
  host_not_allowed: { status: 403, openaiType: "permission_error" },
  origin_not_allowed: { status: 403, openaiType: "permission_error" },
  path_not_allowed: { status: 403, openaiType: "permission_error" },
  model_not_found: { status: 404, openaiType: "not_found_error" },
  not_found: { status: 404, openaiType: "not_found_error" },
  conflict: { status: 409, openaiType: "conflict_error" },
  payload_too_large: { status: 413, openaiType: "invalid_request_error" },
  unsupported_media_type: { status: 415, openaiType: "invalid_request_error" },
  rate_limited: { status: 429, openaiType: "rate_limit_error" },
  quota_exceeded: { status: 429, openaiType: "insufficient_quota" },
  client_closed: { status: 499, openaiType: "request_cancelled" },
  internal: { status: 500, openaiType: "server_error" },
  runner_crashed: { status: 502, openaiType: "server_error" },
  /** The runner had work and made no progress for the stall timeout; it was killed (the model reloads). */
  runner_stalled: { status: 502, openaiType: "server_error" },
  /** The kernel stopped a runner that went past its memory limit (its sandbox's cgroup); the next load gets more. */
  runner_oom: { status: 503, openaiType: "server_error" },
  model_load_failed: { status: 500, openaiType: "server_error" },
  queue_full: { status: 503, openaiType: "server_error" },
  unavailable: { status: 503, openaiType: "server_error" },
  shutting_down: { status: 503, openaiType: "server_error" },
  /** `LLMOS_SANDBOX=required` and this machine cannot isolate runners (no bubblewrap, namespaces or cgroups). */
  sandbox_unavailable: { status: 503, openaiType: "server_error" },
  insufficient_memory: { status: 507, openaiType: "server_error" },
  queue_timeout: { status: 504, openaiType: "timeout_error" },
  upstream_error: { status: 502, openaiType: "server_error" },
  /** Cluster: the node running a forwarded request died or stopped answering after its answer had begun. */
  node_lost: { status: 502, openaiType: "server_error" },
  insufficient_storage: { status: 507, openaiType: "server_error" },
  /** Cluster: the model needs more memory than any node's budget holds, even with the smallest context. */
  insufficient_capacity: { status: 507, openaiType: "server_error" },
} as const satisfies Record<string, { status: number; openaiType: string }>;

/** A stable llmos error code. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** All error codes, for iteration (e.g. building one SDK class per code). */
export const ALL_ERROR_CODES = Object.keys(ERROR_CODES) as ErrorCode[];

/** The HTTP status an error code maps to. */
export function statusForCode(code: ErrorCode): number {
  return ERROR_CODES[code].status;
}

/** Error body of the native API (`/api/...`). */
export interface NativeErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}

/** Error body of the OpenAI-compatible API (`/v1/...`). */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: ErrorCode };
}

/** Error body of the Ollama-compatible API (`/api/generate`, `/api/chat`, ...). */
export interface OllamaErrorBody {
  error: string;
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && Object.prototype.hasOwnProperty.call(ERROR_CODES, value);
}
