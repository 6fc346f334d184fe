/**
 * Keep-alive values: how long an idle model stays loaded. `-1` (any negative value) keeps it until it is unloaded
 * or pinned out; `0` unloads it as soon as it is idle; anything longer than {@link MAX_KEEP_ALIVE_MS} is capped to
 * it. The scheduler checks deadlines itself (one timer, re-armed), so values past Node's timer limit of ~24.8 days
 * (`"25d"`, `"720h"`) are kept as asked.
 */

/** The longest keep-alive: 365 days. Longer values (or Infinity) are capped to it. */
export const MAX_KEEP_ALIVE_MS = 365 * 24 * 60 * 60 * 1000;

/** A keep-alive as the scheduler stores it: -1 (forever), or 0..MAX_KEEP_ALIVE_MS. */
export function normalizeKeepAlive(ms: number): number {
  if (Number.isNaN(ms)) return 0;
  if (ms < 0) return -1;
  return Math.min(Math.round(ms), MAX_KEEP_ALIVE_MS);
}
