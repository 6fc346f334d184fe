/**
 * The arithmetic of a learned keep-alive, over one model's idle-time histogram (usage/idle-histogram.ts). After its
 * last request ends, a model goes through up to four phases, timed from that end:
 *
 *   [0, T1)    kept loaded (a burst may go on)
 *   [T1, W)    unloaded (a quiet stretch: nothing is expected)
 *   [W, T2)    prewarmed: loaded again, ready for the request now due
 *   [T2, ...)  unloaded
 *
 * W = T2 means no prewarm (kept T1, then unloaded); T1 = 0 unloads at once. For the next request, arriving G after
 * the end, it is warm in the loaded phases and cold in the others, and the model sits idle for the loaded time
 * before G. "Serverless in the Wild" (ATC'20) keeps one loaded stretch from the histogram's 5th to its 99th
 * percentile; the four phases also fit the bimodal histograms of bursty traffic (short gaps within bursts, long
 * ones between them).
 *
 * `bestPlan` picks the times on the histogram's bin edges that minimise, per gap,
 *   P(cold) + PREWARM_COST x P(a prewarm load happens) + price x E[idle ms]
 * exactly, in O(bins^2), each bin's gaps counted at its middle. The price of idle time is set by the policy
 * (histogram.ts) so that all models together hold a target of idle memory.
 */
import { BINS, edge, middle, totalWeight } from "../usage/idle-histogram.js";

export interface KeepOption {
  /** Kept loaded this long after the last request ends (T1). */
  keepFirstMs: number;
  /** Loaded again this long after it (W), or null: no prewarm. */
  prewarmAtMs: number | null;
  /** Unloaded for good this long after it (T2; equals keepFirstMs without a prewarm). */
  keepUntilMs: number;
  /** Expected idle time per gap, ms. */
  idleMs: number;
  /** Share of next requests that find the model unloaded. */
  coldShare: number;
  /** coldShare plus the cost of prewarm loads. */
  cost: number;
}

/**
 * What a prewarm load costs, in cold starts: the CPU of a load nobody waits for (on a small machine, a fifth of what
 * a request that waits for it loses).
 */
export const PREWARM_COST = 0.2;

/** A prewarm is planned only after a quiet stretch that at least this share of gaps reaches. */
export const MIN_PREWARM_REACH = 0.05;

/** A histogram's prefix sums: share of gaps below edge k, and their share-weighted bin middles. */
export interface GapSums {
  below: Float64Array;
  mass: Float64Array;
}

/**
 * Memoryless arrivals (exponential gaps of the histogram's own mean) count as this many gaps of evidence: a young
 * or noisy histogram plans close to what Poisson traffic calls for (keep, or unload; no prewarm), and a pattern
 * (a period, bursts) must show in enough gaps to outweigh it.
 */
export const PRIOR_GAPS = 12;

export function gapSums(gaps: readonly number[]): GapSums {
  const total = totalWeight(gaps);
  let meanGap = 0;
  for (let i = 0; i <= BINS; i++) meanGap += total > 0 ? (gaps[i]! / total) * middle(i) : 0;
  const prior = exponentialBins(Math.max(1, meanGap));
  const below = new Float64Array(BINS + 2);
  const mass = new Float64Array(BINS + 2);
  for (let i = 0; i <= BINS; i++) {
    const p = total > 0 ? (gaps[i]! + PRIOR_GAPS * prior[i]!) / (total + PRIOR_GAPS) : 0;
    below[i + 1] = below[i]! + p;
    mass[i + 1] = mass[i]! + p * middle(i);
  }
  // Gaps beyond the last edge never reach the end of the (unbounded) last bin: phases end at edge(BINS) at most.
  return { below, mass };
}

/**
 * The cheapest plan at `pricePerMs` (cost of one ms of idle time, in cold starts). A prewarm starts no sooner
 * than `minQuietMs` after the model was unloaded (a shorter quiet stretch cannot unload and load in time).
 */
export function bestPlan(s: GapSums, pricePerMs: number, minQuietMs: number): KeepOption {
  const { below: P, mass: M } = s;
  const n = BINS; // edges 0..n; phases end at edge(n) at most (the overflow bin is cold past it)
  // For each prewarm start b, the best end c >= b of the prewarmed phase: cold after it, idle in it.
  const bestEnd = new Int32Array(n + 1);
  const bestEndValue = new Float64Array(n + 1);
  for (let b = 0; b <= n; b++) {
    const W = edge(b);
    let best = b;
    let bestValue = Infinity;
    for (let c = b; c <= n; c++) {
      const T2 = edge(c);
      const idle = M[c]! - M[b]! - W * (P[c]! - P[b]!) + (T2 - W) * (1 - P[c]!);
      const value = 1 - P[c]! + pricePerMs * idle;
      if (value < bestValue - 1e-15) {
        bestValue = value;
        best = c;
      }
    }
    bestEnd[b] = best;
    bestEndValue[b] = bestValue;
  }
  let plan: KeepOption | undefined;
  let planValue = Infinity;
  for (let a = 0; a <= n; a++) {
    const T1 = edge(a);
    // Kept the first T1: gaps under it were held G, longer ones T1.
    const firstIdle = M[a]! + T1 * (1 - P[a]!);
    const firstValue = pricePerMs * firstIdle;
    // No prewarm: everything after T1 is cold.
    const plain = firstValue + (1 - P[a]!);
    if (plain < planValue - 1e-15) {
      planValue = plain;
      plan = option(s, a, null, a);
    }
    // A prewarm deep in the tail (reached by few gaps) would follow noise, not a pattern.
    if (1 - P[a]! < MIN_PREWARM_REACH) continue;
    for (let b = a + 1; b <= n; b++) {
      if (edge(b) - T1 < minQuietMs) continue;
      const value = firstValue + (P[b]! - P[a]!) + PREWARM_COST * (1 - P[a]!) + bestEndValue[b]!;
      if (value < planValue - 1e-15) {
        planValue = value;
        plan = option(s, a, b, bestEnd[b]!);
      }
    }
  }
  return plan!;
}

/** Idle time and cold share of the plan on edges a (T1), b (W, or null), c (T2). */
export function option(s: GapSums, a: number, b: number | null, c: number): KeepOption {
  const { below: P, mass: M } = s;
  const T1 = edge(a);
  let idle = M[a]! + T1 * (1 - P[a]!);
  let cold = 1 - P[a]!;
  let cost = cold;
  if (b !== null) {
    const W = edge(b);
    const T2 = edge(c);
    idle += M[c]! - M[b]! - W * (P[c]! - P[b]!) + (T2 - W) * (1 - P[c]!);
    cold = P[b]! - P[a]! + (1 - P[c]!);
    cost = cold + PREWARM_COST * (1 - P[a]!);
  }
  return {
    keepFirstMs: T1,
    prewarmAtMs: b === null ? null : edge(b),
    keepUntilMs: b === null ? T1 : edge(c),
    idleMs: idle,
    coldShare: cold,
    cost,
  };
}

/** The share of exponential gaps of mean `mean` in each bin. */
function exponentialBins(mean: number): Float64Array {
  const out = new Float64Array(BINS + 1);
  for (let i = 0; i <= BINS; i++) {
    const lo = Math.exp(-edge(i) / mean);
    const hi = i >= BINS ? 0 : Math.exp(-edge(i + 1) / mean);
    out[i] = lo - hi;
  }
  return out;
}

/** Expected idle time per gap under a fixed keep-alive `keepAliveMs`: E[min(G, keep-alive)]. */
export function fixedIdleMs(gaps: readonly number[], keepAliveMs: number): number {
  const total = totalWeight(gaps);
  if (total <= 0) return 0;
  let idle = 0;
  for (let i = 0; i <= BINS; i++) idle += (gaps[i]! / total) * Math.min(middle(i), keepAliveMs);
  return idle;
}

/**
 * Of the gaps still to come after `ageMs` of idleness, the share that arrives within the next `horizonMs` (0 when
 * no recorded gap was that long).
 */
export function arrivalWithin(gaps: readonly number[], ageMs: number, horizonMs: number): number {
  let later = 0;
  let within = 0;
  for (let i = 0; i <= BINS; i++) {
    const m = middle(i);
    if (m < ageMs) continue;
    later += gaps[i]!;
    if (m < ageMs + horizonMs) within += gaps[i]!;
  }
  return later > 0 ? within / later : 0;
}
