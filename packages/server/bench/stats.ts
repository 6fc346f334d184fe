/** Small statistics for benchmark repetitions: medians and spread, never single samples. */

/**
 * Wait until the previous measurement's threads have gone quiet: ggml threadpools without OpenMP (llama-bench
 * and llama-server on the prebuilt libraries) busy-poll for about 100 ms after their last work, which would slow
 * whatever is measured next.
 */
export function settle(ms = 300): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** Median with min and max, e.g. `120.3 (115.0-124.9)`. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  samples: number[];
}

export function spread(xs: number[]): Spread {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), samples: xs };
}

export function fmt(n: number | undefined, digits = 1): string {
  return n === undefined || !Number.isFinite(n) ? "n/a" : n.toFixed(digits);
}

export function fmtSpread(s: Spread | undefined, digits = 1): string {
  return s ? `${fmt(s.median, digits)} (${fmt(s.min, digits)}-${fmt(s.max, digits)})` : "n/a";
}

export function ratio(a: number | undefined, b: number | undefined): string {
  return a !== undefined && b !== undefined && b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(2)}x` : "n/a";
}

/**
 * Median of the ratios of paired samples (`a[i] / b[i]`, measured in the same round): on a noisy machine, numbers
 * measured moments apart are more alike than the medians of two series. Undefined when there is no pair.
 */
export function pairedRatio(a: number[] | undefined, b: number[] | undefined): number | undefined {
  if (!a || !b) return undefined;
  const rs: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++)
    if (b[i]! > 0 && Number.isFinite(a[i]!)) rs.push(a[i]! / b[i]!);
  return rs.length > 0 ? median(rs) : undefined;
}

export function fmtRatio(r: number | undefined): string {
  return r !== undefined && Number.isFinite(r) ? `${r.toFixed(2)}x` : "n/a";
}
