/**
 * Pino `redact` paths that keep credentials out of logs: the daemon logger's own list (one list, so what the tests
 * check is what the logger does). Use: `pino({ redact: { paths: [...REDACT_PATHS], censor: "[redacted]" } })`.
 */
export { LOG_REDACT_PATHS as REDACT_PATHS } from "../telemetry/logger.js";
