import { pino, type Logger } from "pino";

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

/** Structured JSON logger for the daemon (one line per event). */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    { level, redact: { paths: SECRET_LOG_PATHS, censor: "[redacted]" }, base: { svc: "llmos" } },
    destination as never,
  );
}
