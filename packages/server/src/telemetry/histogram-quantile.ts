/** Cumulative bucket counts of a histogram: upper bound (`le`, Infinity for +Inf) -> observations at or below it. */
export type Buckets = Map<number, number>;

/** Bucket-wise difference `later - earlier` (the observations made between two samples). */
export function bucketDelta(later: Buckets, earlier: Buckets | undefined): Buckets {
  const out: Buckets = new Map();
  for (const [le, n] of later) out.set(le, Math.max(0, n - (earlier?.get(le) ?? 0)));
  return out;
}

/**
 * The q-quantile (0..1) of the observations in cumulative buckets, interpolated linearly inside the bucket that
 * holds it, as Prometheus' `histogram_quantile` does (so the dashboard and a Grafana panel agree). A quantile that
 * falls in the +Inf bucket answers the highest finite bound. Null when there are no observations.
 */
export function histogramQuantile(q: number, buckets: Buckets): number | null {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = buckets.get(Infinity) ?? (bounds.length ? buckets.get(bounds[bounds.length - 1]!)! : 0);
  if (!total) return null;
  const rank = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (const le of bounds) {
    const count = buckets.get(le)!;
    if (count >= rank) {
      if (le === Infinity) return prevBound;
      const inBucket = count - prevCount;
      return inBucket > 0 ? prevBound + ((le - prevBound) * (rank - prevCount)) / inBucket : le;
    }
    prevBound = le;
    prevCount = count;
  }
  return prevBound;
}
