import { parseDurationMs } from "../../config/load.js";
import { LlmosError } from "../../errors.js";

/** Body fields that carry a keep-alive (`keep_alive` on the Ollama and OpenAI routes, `keepAlive` on load). */
const FIELDS = ["keep_alive", "keepAlive"] as const;

/**
 * Keep-alive for a caller without the `models:write` scope: how long a model stays in memory is a decision about
 * shared memory, so such a caller may keep a model for at most `maxMs` (longer values are capped, the request
 * still runs), and may neither pin it (`-1`, any negative value) nor unload it (`0`): those are 403s.
 * Rewrites the body in place; values that do not parse are left for the route to refuse.
 */
export function applyKeepAlivePolicy(body: unknown, maxMs: number): void {
  if (!body || typeof body !== "object" || Array.isArray(body)) return;
  const b = body as Record<string, unknown>;
  for (const field of FIELDS) {
    const value = b[field];
    if (typeof value !== "number" && typeof value !== "string") continue;
    let ms: number;
    try {
      ms = parseDurationMs(value);
    } catch {
      continue;
    }
    if (ms <= 0) {
      throw new LlmosError(
        "forbidden",
        `${field}: ${JSON.stringify(value)} ${ms < 0 ? "keeps a model loaded forever" : "unloads the model"}, ` +
          `which needs the "models:write" scope`,
        { param: field, requiredScope: "models:write" },
      );
    }
    // Seconds, the unit every API accepts for a bare number.
    if (ms > maxMs) b[field] = maxMs / 1000;
  }
}
