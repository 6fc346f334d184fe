/**
 * Pino `redact` paths that keep credentials out of logs: request headers as pino/fastify serialize them
 * (`req.headers`), raw header objects, and secrets returned when keys are created or rotated.
 * Use: `pino({ redact: { paths: [...REDACT_PATHS], censor: "[redacted]" } })`.
 */
export const REDACT_PATHS: readonly string[] = [
  "req.headers.authorization",
  'req.headers["x-api-key"]',
  "request.headers.authorization",
  'request.headers["x-api-key"]',
  "headers.authorization",
  'headers["x-api-key"]',
  "*.headers.authorization",
  '*.headers["x-api-key"]',
  "secret",
  "*.secret",
  "adminToken",
  "*.adminToken",
];
