import { pino, type Logger } from "pino";
import type { EventHub } from "./event-hub.js";
import { logTap } from "./log-tap.js";

export type { Logger };

/**
 * Where secrets can sit in what llmos logs; pino replaces them with "[redacted]" at every level, before a line
 * reaches any destination (the dashboard's live tail included). The one list: the logger uses it and the tests
 * check it (`security/redact.ts` re-exports it as REDACT_PATHS). Request headers as pino/fastify serialise them,
 * raw header objects, and secrets by name: key secrets returned when keys are created or rotated, the admin
 * token, Hugging Face tokens, API keys given as options.
 */
export const LOG_REDACT_PATHS: readonly string[] = [
  "req.headers.authorization",
  'req.headers["x-api-key"]',
  "req.headers.cookie",
  "request.headers.authorization",
  'request.headers["x-api-key"]',
  "headers.authorization",
  'headers["x-api-key"]',
  "*.headers.authorization",
  '*.headers["x-api-key"]',
  "authorization",
  "*.authorization",
  '["x-api-key"]',
  '*["x-api-key"]',
  "secret",
  "*.secret",
  "adminToken",
  "*.adminToken",
  "token",
  "*.token",
  "hfToken",
  "*.hfToken",
  "apiKey",
  "*.apiKey",
];

/**
 * Structured JSON logger for the daemon (one line per event). With `hub`, each line is also published as a `log`
 * event for the dashboard's live tail (after redaction).
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream, hub?: EventHub): Logger {
  const options = {
    level,
    redact: { paths: [...LOG_REDACT_PATHS], censor: "[redacted]" },
    base: { svc: "llmos" },
  };
  if (!hub) return pino(options, destination as never);
  const streams = pino.multistream([
    { level: level as never, stream: destination ?? process.stdout },
    { level: level as never, stream: logTap(hub) },
  ]);
  return pino(options, streams);
}
