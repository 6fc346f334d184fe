/**
 * Request rate by time of day: decayed request counts in 24 buckets of a day whose length is configurable, so a
 * benchmark can compress a diurnal cycle into minutes (`usageDayMs`); a real daemon uses 24 hours.
 */

export const HOURS = 24;

/** The bucket of time `at` (ms since the epoch) in a day of `dayMs`. */
export function hourOf(at: number, dayMs: number): number {
  const phase = (((at % dayMs) + dayMs) % dayMs) / dayMs;
  return Math.min(HOURS - 1, Math.floor(phase * HOURS));
}

export function emptyHourly(): number[] {
  return new Array<number>(HOURS).fill(0);
}

/**
 * The model's rate at `at` relative to its daily mean (1 = average), smoothed with `prior` pseudo-requests per
 * bucket so that a young history reads as flat rather than as zero; clamped to [1/8, 8].
 */
export function relativeRate(hourly: readonly number[], at: number, dayMs: number, prior = 2): number {
  let total = 0;
  for (const c of hourly) total += c;
  const mean = total / HOURS;
  const here = hourly[hourOf(at, dayMs)] ?? 0;
  return Math.min(8, Math.max(1 / 8, (here + prior) / (mean + prior)));
}
