/**
 * The statistics of `llmos eval`, over rows of logits (one row of `vocab` floats per scored position), computed
 * as llama-perplexity computes them but without its 16-bit compression of the base model's log-probabilities, so a
 * model compared with itself gives exactly 0:
 *   nll(row, next)   = log(sum_i exp(l_i - max)) + max - l_next            perplexity = exp(mean nll)
 *   kld(base, model) = sum_i p_base_i * (log p_base_i - log p_model_i)      (nats)
 *   top-token agreement: the share of positions where both rows' argmax are the same token.
 */

/** Log-probabilities of one row (float64, exact enough that equal rows give equal results). */
export function logSoftmax(row: Float32Array, offset: number, vocab: number, out: Float64Array): number {
  let max = -Infinity;
  let argmax = 0;
  for (let i = 0; i < vocab; i++) {
    const v = row[offset + i]!;
    if (v > max) {
      max = v;
      argmax = i;
    }
  }
  let sum = 0;
  for (let i = 0; i < vocab; i++) sum += Math.exp(row[offset + i]! - max);
  const logSum = Math.log(sum) + max;
  for (let i = 0; i < vocab; i++) out[i] = row[offset + i]! - logSum;
  return argmax;
}

/** Accumulates perplexity and, with a base model, KL divergence over scored positions. */
export class EvalAccumulator {
  private readonly logp: Float64Array;
  private readonly baseLogp: Float64Array;
  private nll = 0;
  private baseNll = 0;
  private count = 0;
  private sameTop = 0;
  private klds: number[] = [];

  constructor(private readonly vocab: number) {
    this.logp = new Float64Array(vocab);
    this.baseLogp = new Float64Array(vocab);
  }

  /**
   * Adds `rows` positions: `logits` are the model's rows, `next[r]` the token that followed position r, and
   * `baseLogits` (optional) the base model's rows for the same positions.
   */
  add(logits: Float32Array, next: ArrayLike<number>, rows: number, baseLogits?: Float32Array): void {
    const v = this.vocab;
    for (let r = 0; r < rows; r++) {
      const top = logSoftmax(logits, r * v, v, this.logp);
      const token = next[r]!;
      this.nll -= this.logp[token]!;
      this.count++;
      if (!baseLogits) continue;
      const baseTop = logSoftmax(baseLogits, r * v, v, this.baseLogp);
      this.baseNll -= this.baseLogp[token]!;
      let kld = 0;
      for (let i = 0; i < v; i++) {
        const lb = this.baseLogp[i]!;
        kld += Math.exp(lb) * (lb - this.logp[i]!);
      }
      this.klds.push(Math.max(0, kld)); // rounding can make an exact 0 a -1e-17
      if (top === baseTop) this.sameTop++;
    }
  }

  /** Positions scored so far. */
  get tokens(): number {
    return this.count;
  }

  /** The results so far. */
  result(): EvalStats {
    const perplexity = Math.exp(this.nll / Math.max(1, this.count));
    if (this.klds.length === 0) return { tokens: this.count, perplexity };
    const basePerplexity = Math.exp(this.baseNll / Math.max(1, this.count));
    const sorted = Float64Array.from(this.klds).sort();
    const mean = sorted.reduce((s, x) => s + x, 0) / sorted.length;
    return {
      tokens: this.count,
      perplexity,
      basePerplexity,
      perplexityRatio: perplexity / basePerplexity,
      kld: {
        mean,
        median: percentile(sorted, 0.5),
        p99: percentile(sorted, 0.99),
        max: sorted[sorted.length - 1]!,
      },
      topTokenAgreement: this.sameTop / this.count,
    };
  }
}

/** What {@link EvalAccumulator.result} reports. */
export interface EvalStats {
  /** Positions scored. */
  tokens: number;
  perplexity: number;
  basePerplexity?: number;
  /** perplexity / basePerplexity. */
  perplexityRatio?: number;
  /** KL divergence of the model's token distributions from the base model's, in nats per position. */
  kld?: { mean: number; median: number; p99: number; max: number };
  /** Share of positions where the model's most likely token is the base model's. */
  topTokenAgreement?: number;
}

/** Linear-interpolated percentile of sorted values (llama-perplexity's definition). */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}
