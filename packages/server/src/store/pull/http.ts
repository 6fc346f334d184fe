import { LlmosError } from "../../errors.js";
import { hubAuthHeaders, hubError } from "./hub.js";
import type { UrlPolicy } from "./url-policy.js";

/** Where a Hub token (or a registry's authorization) may be sent, and which URLs may be fetched. */
export interface AuthScope {
  endpoint: string;
  token?: string;
  /** The `Authorization` value for the endpoint's origin, read at each request (wins over `token`). */
  authorization?: () => string | undefined;
  /** After a 401 from the endpoint's origin: renews the authorization; true = send the request once more. */
  refresh?: (response: Response) => Promise<boolean>;
  /** Checks every URL before it is fetched (the first and each redirect's target); throws to refuse. */
  checkUrl?: UrlPolicy;
}

/** A response after following redirects, with headers of every hop (the Hub puts `x-linked-*` on its 302). */
export interface FollowedResponse {
  response: Response;
  finalUrl: string;
  hopHeaders: Headers[];
}

/** Thrown for failures worth retrying (5xx, 429, network errors). */
export class RetryableError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "RetryableError";
  }
}

/**
 * Fetches `url` following up to 10 redirects by hand, so that the Hub token goes to the Hub's origin only and never
 * to the CDN (or any other host) a redirect points to, and so that each hop passes the pull URL policy
 * (`scope.checkUrl`). 4xx answers become clear errors; 5xx/429 and network errors become {@link RetryableError}.
 */
export async function fetchFollowing(
  url: string,
  init: { method?: string; headers?: Record<string, string>; signal?: AbortSignal },
  scope: AuthScope,
  what: string,
  doFetch: typeof fetch = fetch,
  hub = true,
): Promise<FollowedResponse> {
  const hopHeaders: Headers[] = [];
  let current = url;
  let refreshed = false;
  await scope.checkUrl?.(new URL(current), "request");
  for (let hop = 0; hop <= 10; hop++) {
    let response: Response;
    const sameOrigin = new URL(current).origin === new URL(scope.endpoint).origin;
    const authorization = sameOrigin ? scope.authorization?.() : undefined;
    try {
      response = await doFetch(current, {
        method: init.method ?? "GET",
        headers: {
          ...init.headers,
          ...(authorization ? { authorization } : hubAuthHeaders(current, scope)),
        },
        redirect: "manual",
        signal: init.signal,
      });
    } catch (error) {
      if (init.signal?.aborted) throw error;
      throw new RetryableError(`cannot reach ${new URL(current).host}: ${(error as Error).message}`, undefined, {
        cause: error,
      });
    }
    if (response.status === 401 && sameOrigin && scope.refresh && !refreshed) {
      refreshed = true;
      await response.body?.cancel();
      if (await scope.refresh(response)) {
        hop--;
        continue;
      }
      throw httpError(401, what);
    }
    hopHeaders.push(response.headers);
    const location = response.headers.get("location");
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      const next = new URL(location, current);
      await scope.checkUrl?.(next, "redirect", new URL(current));
      if (next.username || next.password)
        throw new LlmosError("upstream_error", `${what}: the server redirected to a URL with credentials in it`);
      current = next.toString();
      continue;
    }
    if (response.status === 429 || response.status >= 500) {
      await response.body?.cancel();
      const retryAfter = Number(response.headers.get("retry-after"));
      throw new RetryableError(
        `${what}: HTTP ${response.status}`,
        Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
      );
    }
    if (response.status >= 400 && response.status !== 416) {
      await response.body?.cancel();
      if (hub) throw hubError(response.status, what, Boolean(scope.token));
      throw httpError(response.status, what);
    }
    return { response, finalUrl: current, hopHeaders };
  }
  throw new LlmosError("upstream_error", `${what}: too many redirects`);
}

/** A clear error for an HTTP failure of a non-Hub server. */
export function httpError(status: number, what: string): LlmosError {
  const details = { upstreamStatus: status };
  if (status === 404) return new LlmosError("not_found", `not found: ${what} (HTTP 404)`, details);
  if (status === 401 || status === 403) {
    return new LlmosError("forbidden", `the server refused access to ${what} (HTTP ${status})`, details);
  }
  return new LlmosError("upstream_error", `${what}: HTTP ${status}`, details);
}

/** Waits `ms` or until `signal` aborts (then throws its reason). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Backoff before retry `attempt` (1-based): base * 2^(attempt-1) with jitter, capped at 30 s. */
export function backoffMs(attempt: number, baseMs: number, retryAfterMs?: number): number {
  const exp = Math.min(30_000, baseMs * 2 ** (attempt - 1));
  return Math.max(retryAfterMs ?? 0, exp * (0.75 + Math.random() * 0.5));
}
