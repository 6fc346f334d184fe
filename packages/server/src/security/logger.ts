/** The logging the security layer needs (a pino logger fits). */
export interface SecurityLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A logger that drops everything. */
export const silentLogger: SecurityLogger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
