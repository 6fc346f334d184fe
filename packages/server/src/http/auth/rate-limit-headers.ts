import type { FastifyReply } from "fastify";
import type { RateLimitStatus } from "../../security/index.js";

/** OpenAI-style duration: `20ms`, `1s`, `1.5s`, `6m0s`, `1h2m3s`. */
export function formatResetDuration(ms: number): string {
  const total = Math.max(0, Math.ceil(ms));
  if (total < 1000) return `${total}ms`;
  const h = Math.floor(total / 3_600_000);
  const m = Math.floor((total % 3_600_000) / 60_000);
  const s = (total % 60_000) / 1000;
  const sec = `${Number(s.toFixed(3))}s`;
  if (h > 0) return `${h}h${m}m${sec}`;
  if (m > 0) return `${m}m${sec}`;
  return sec;
}

/**
 * Sets OpenAI's `x-ratelimit-*` headers (requests and tokens per minute) and llmos' daily-quota
 * headers (`x-ratelimit-*-tokens-day`) for the limits a key has.
 */
export function setRateLimitHeaders(reply: FastifyReply, status: RateLimitStatus): void {
  if (status.requests) {
    reply.header("x-ratelimit-limit-requests", String(status.requests.limit));
    reply.header("x-ratelimit-remaining-requests", String(status.requests.remaining));
    reply.header("x-ratelimit-reset-requests", formatResetDuration(status.requests.resetMs));
  }
  if (status.tokens) {
    reply.header("x-ratelimit-limit-tokens", String(status.tokens.limit));
    reply.header("x-ratelimit-remaining-tokens", String(status.tokens.remaining));
    reply.header("x-ratelimit-reset-tokens", formatResetDuration(status.tokens.resetMs));
  }
  if (status.daily) {
    reply.header("x-ratelimit-limit-tokens-day", String(status.daily.limit));
    reply.header("x-ratelimit-remaining-tokens-day", String(status.daily.remaining));
    reply.header("x-ratelimit-reset-tokens-day", formatResetDuration(status.daily.resetMs));
  }
}

/** Sets `Retry-After` (whole seconds, at least 1) and `retry-after-ms` (honoured by the OpenAI SDK). */
export function setRetryAfter(reply: FastifyReply, retryAfterSeconds: number): void {
  reply.header("retry-after", String(Math.max(1, Math.ceil(retryAfterSeconds))));
  reply.header("retry-after-ms", String(Math.max(1, Math.ceil(retryAfterSeconds * 1000))));
}
