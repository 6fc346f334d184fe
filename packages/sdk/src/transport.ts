import { APIConnectionError, APITimeoutError, APIUserAbortError, LlmosError, errorFromResponse } from "./errors.js";

/** The `fetch` signature the SDK needs (the global `fetch` or any compatible implementation). */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** Settings of the HTTP layer, fixed per client. */
export interface TransportSettings {
  baseUrl: string;
  apiKey: string | undefined;
  timeout: number;
  maxRetries: number;
  fetch: FetchLike;
  defaultHeaders: Record<string, string>;
}

/** One HTTP request as the SDK's methods describe it. */
export interface RequestSpec {
  method: "GET" | "POST" | "DELETE" | "PUT" | "PATCH" | "HEAD";
  /** Path with already-encoded parameters, e.g. `/api/models/stories%3Alatest`. */
  path: string;
  /** JSON body. */
  body?: unknown;
  /** A body sent as is (`application/octet-stream`), e.g. a blob upload; instead of `body`. */
  rawBody?: Blob | Uint8Array;
  query?: Record<string, string | number | boolean | undefined>;
  signal?: AbortSignal;
  /** Overrides the client's timeout (ms) for this request. */
  timeout?: number;
  /** Overrides the client's retry count for this request. */
  maxRetries?: number;
  headers?: Record<string, string>;
  /** Whether a connection error may be retried; default: true for GET, HEAD and DELETE. */
  idempotent?: boolean;
}

/** A successful response whose body has not been read yet, with the timers and listeners that guard it. */
export interface OpenResponse {
  response: Response;
  requestId: string | undefined;
  /** Stops the timeout (streams: once the headers are in, generation may legitimately take long). */
  stopTimer(): void;
  /** Maps an error thrown while reading the body to the right SDK error. */
  mapReadError(error: unknown): LlmosError;
  /** Releases the timer and the abort listener; aborts the connection if the body is still open. */
  close(): void;
}

const MAX_RETRY_AFTER_MS = 60_000;

/** Sends requests with auth, timeouts, abort, retries (429/503, connection errors when idempotent) and typed errors. */
export class Transport {
  constructor(readonly settings: TransportSettings) {}

  /** Sends a request and parses a JSON response body. */
  async json<T>(spec: RequestSpec): Promise<T> {
    return readJson<T>(await this.open(spec));
  }

  /**
   * Sends a request and returns the open response once the status is 2xx. Errors before that point are retried
   * as configured; the caller owns the body and must call `close()`.
   */
  async open(spec: RequestSpec): Promise<OpenResponse> {
    const { settings } = this;
    const maxRetries = spec.maxRetries ?? settings.maxRetries;
    const timeout = spec.timeout ?? settings.timeout;
    const idempotent = spec.idempotent ?? (spec.method === "GET" || spec.method === "HEAD" || spec.method === "DELETE");
    const url = this.url(spec);
    const headers = this.headers(spec);
    const body: RequestInit["body"] =
      spec.rawBody !== undefined
        ? (spec.rawBody as RequestInit["body"])
        : spec.body === undefined
          ? undefined
          : JSON.stringify(spec.body);
    const signal = spec.signal;

    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw abortError(signal);
      const controller = new AbortController();
      let timedOut = false;
      let timer: ReturnType<typeof setTimeout> | undefined = setTimeout(() => {
        timedOut = true;
        controller.abort();
      }, timeout);
      const onAbort = () => controller.abort();
      signal?.addEventListener("abort", onAbort, { once: true });
      const stopTimer = () => {
        if (timer !== undefined) clearTimeout(timer);
        timer = undefined;
      };
      const release = () => {
        stopTimer();
        signal?.removeEventListener("abort", onAbort);
      };
      const mapError = (error: unknown, requestId?: string): LlmosError => {
        if (error instanceof LlmosError) return error;
        if (signal?.aborted) return abortError(signal, requestId);
        if (timedOut) {
          return new APITimeoutError(`request timed out after ${timeout} ms`, {
            code: "timeout",
            requestId,
            cause: error,
          });
        }
        return new APIConnectionError(`connection to ${settings.baseUrl} failed: ${describe(error)}`, {
          code: "connection_error",
          requestId,
          cause: error,
        });
      };

      let response: Response;
      try {
        response = await settings.fetch(url, { method: spec.method, headers, body, signal: controller.signal });
      } catch (error) {
        release();
        const mapped = mapError(error);
        if (mapped instanceof APIUserAbortError || !idempotent || attempt >= maxRetries) throw mapped;
        await sleep(backoffMs(attempt), signal);
        continue;
      }
      const requestId = response.headers.get("x-request-id") ?? undefined;

      if (response.ok) {
        return {
          response,
          requestId,
          stopTimer,
          mapReadError: (error) => mapError(error, requestId),
          close: () => {
            release();
            controller.abort();
          },
        };
      }

      let parsed: unknown;
      try {
        const text = await response.text();
        parsed = text === "" ? undefined : safeParse(text);
      } catch (error) {
        release();
        throw mapError(error, requestId);
      }
      release();
      const retryAfterMs = parseRetryAfter(response.headers);
      const error = errorFromResponse({ status: response.status, body: parsed, requestId, retryAfterMs });
      const retryable = (response.status === 429 && error.code !== "quota_exceeded") || response.status === 503;
      if (!retryable || attempt >= maxRetries || (retryAfterMs !== undefined && retryAfterMs > MAX_RETRY_AFTER_MS)) {
        throw error;
      }
      await sleep(retryAfterMs ?? backoffMs(attempt), signal);
    }
  }

  private url(spec: RequestSpec): string {
    let url = this.settings.baseUrl + spec.path;
    if (spec.query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(spec.query)) if (v !== undefined) params.set(k, String(v));
      const qs = params.toString();
      if (qs) url += `?${qs}`;
    }
    return url;
  }

  private headers(spec: RequestSpec): Record<string, string> {
    const headers: Record<string, string> = { accept: "application/json", ...this.settings.defaultHeaders };
    if (spec.body !== undefined) headers["content-type"] = "application/json";
    if (spec.rawBody !== undefined) headers["content-type"] = "application/octet-stream";
    if (this.settings.apiKey) headers["authorization"] = `Bearer ${this.settings.apiKey}`;
    return { ...headers, ...spec.headers };
  }
}

function abortError(signal: AbortSignal, requestId?: string): APIUserAbortError {
  return new APIUserAbortError("request aborted", { code: "aborted", requestId, cause: signal.reason });
}

function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } } | undefined)?.cause;
  if (cause?.code) return cause.code;
  if (cause?.message) return cause.message;
  return error instanceof Error ? error.message : String(error);
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { error: text.slice(0, 500) };
  }
}

/** Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... capped at 8 s, each reduced by up to 25 %. */
export function backoffMs(attempt: number): number {
  const base = Math.min(500 * 2 ** attempt, 8000);
  return Math.round(base * (1 - Math.random() * 0.25));
}

/** Reads `retry-after-ms`, then `retry-after` (seconds or an HTTP date). */
export function parseRetryAfter(headers: Headers): number | undefined {
  const ms = headers.get("retry-after-ms");
  if (ms !== null && ms.trim() !== "" && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const value = headers.get("retry-after");
  if (value === null || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Reads and parses the JSON body of an open response, then closes it. An empty body gives `undefined`. */
export async function readJson<T>(open: OpenResponse): Promise<T> {
  let text: string;
  try {
    text = await open.response.text();
  } catch (error) {
    throw open.mapReadError(error);
  } finally {
    open.close();
  }
  if (text === "") return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new LlmosError("response body is not valid JSON", {
      code: "invalid_response",
      status: open.response.status,
      requestId: open.requestId,
      cause: error,
    });
  }
}
