/** A source of "now" in epoch ms (injectable for tests). */
export type Now = () => number;

/**
 * Lengths of the rate-limit periods. `timeScale` shrinks them for tests: at 0.01 a "minute" lasts 0.6 s
 * and a "day" 864 s. Production uses 1.
 */
export function periodsFor(timeScale: number): { minuteMs: number; dayMs: number } {
  if (!(timeScale > 0) || !Number.isFinite(timeScale))
    throw new RangeError(`timeScale must be a positive number, got ${timeScale}`);
  return { minuteMs: 60_000 * timeScale, dayMs: 86_400_000 * timeScale };
}

/** The UTC day of an instant as `YYYY-MM-DD`. */
export function utcDay(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 10);
}

/** Parses a `since` given as Date, epoch ms, `YYYY-MM-DD` or ISO string into epoch ms (NaN when invalid). */
export function toEpochMs(value: Date | string | number): number {
  if (value instanceof Date) return value.getTime();
  if (typeof value === "number") return value;
  return Date.parse(value);
}
