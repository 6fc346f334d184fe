/**
 * The idle-time histogram of one model ("Serverless in the Wild", ATC'20): how long after the model went idle
 * (its last request ended) the next request arrived. Bins are log-spaced, so one layout serves gaps of 20 ms
 * (a time-compressed benchmark) and of hours (a real day) with the same relative precision: bin 0 holds gaps
 * under 20 ms, bin i (1..BINS-1) gaps in [20 ms * 1.1^(i-1), 20 ms * 1.1^i), and the last bin (index BINS) the gaps
 * beyond the last edge (about 21 hours). Weights are plain numbers so old samples can decay.
 */

/** Version of this layout, stored with each record; a reader refuses layouts it does not know. */
export const HISTOGRAM_LAYOUT = 1;
/** Bins below the overflow bin. */
export const BINS = 160;
const FIRST_EDGE_MS = 20;
const RATIO = 1.1;

const EDGES = Float64Array.from({ length: BINS + 2 }, (_, i) => (i <= 0 ? 0 : FIRST_EDGE_MS * RATIO ** (i - 1)));
const MIDDLES = Float64Array.from({ length: BINS + 1 }, (_, i) =>
  i >= BINS ? EDGES[BINS]! : (EDGES[i]! + EDGES[i + 1]!) / 2,
);

/** The lower edge of bin `i` (0 for bin 0); `edge(BINS)` is where the overflow bin begins. */
export function edge(i: number): number {
  return EDGES[Math.max(0, Math.min(BINS + 1, i))]!;
}

/** The bin a gap of `ms` falls in (0..BINS, BINS being the overflow). */
export function binOf(ms: number): number {
  if (!(ms >= FIRST_EDGE_MS)) return 0;
  return Math.min(BINS, 1 + Math.floor(Math.log(ms / FIRST_EDGE_MS) / Math.log(RATIO) + 1e-9));
}

/** A representative gap of bin `i`: the middle of its edges (the overflow bin: its lower edge). */
export function middle(i: number): number {
  return MIDDLES[Math.max(0, Math.min(BINS, i))]!;
}

/** An empty histogram (BINS + 1 weights). */
export function emptyHistogram(): number[] {
  return new Array<number>(BINS + 1).fill(0);
}

/** Total weight. */
export function totalWeight(h: readonly number[]): number {
  let n = 0;
  for (const w of h) n += w;
  return n;
}

/** The gap under which a share `p` (0..1) of the weight lies, at bin resolution (upper edge of that bin). */
export function percentile(h: readonly number[], p: number): number | null {
  const total = totalWeight(h);
  if (total <= 0) return null;
  let acc = 0;
  for (let i = 0; i < h.length; i++) {
    acc += h[i]!;
    if (acc >= p * total - 1e-12) return i >= BINS ? Infinity : edge(i + 1);
  }
  return Infinity;
}
