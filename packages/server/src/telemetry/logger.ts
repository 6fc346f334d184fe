import { pino, type Logger } from "pino";
import type { EventHub } from "./event-hub.js";
import { logTap } from "./log-tap.js";

export type { Logger };

/** Header paths that carry secrets; never logged. */
export const SECRET_LOG_PATHS = [
  "req.headers.authorization",
  'req.headers["x-api-key"]',
  "headers.authorization",
  'headers["x-api-key"]',
  "secret",
  "*.secret",
];

/**
 * Structured JSON logger for the daemon (one line per event). With `hub`, each line is also published as a `log`
 * event for the dashboard's live tail (after redaction).
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream, hub?: EventHub): Logger {
  const options = { level, redact: { paths: SECRET_LOG_PATHS, censor: "[redacted]" }, base: { svc: "llmos" } };
  if (!hub) return pino(options, destination as never);
  const streams = pino.multistream([
    { level: level as never, stream: destination ?? process.stdout },
    { level: level as never, stream: logTap(hub) },
  ]);
  return pino(options, streams);
}
