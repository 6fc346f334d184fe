/** Log-probabilities from raw logits (before any sampler touches them). */

/** Log-softmax normaliser and the `n` most likely tokens of one logits row. */
export interface LogitsSummary {
  /** log(sum(exp(logits))). */
  logSumExp: number;
  /** Top tokens, most likely first. */
  top: Array<{ token: number; logprob: number }>;
}

/** One pass over the row: running max-shifted sum plus a small insertion-sorted top-n list. */
export function summarizeLogits(logits: Float32Array, n: number): LogitsSummary {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  const topIds: number[] = [];
  const topVals: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    sum += Math.exp(v - max);
    if (n > 0 && (topIds.length < n || v > topVals[topVals.length - 1]!)) {
      let at = topVals.length;
      while (at > 0 && topVals[at - 1]! < v) at--;
      topIds.splice(at, 0, i);
      topVals.splice(at, 0, v);
      if (topIds.length > n) {
        topIds.pop();
        topVals.pop();
      }
    }
  }
  const logSumExp = max + Math.log(sum);
  return { logSumExp, top: topIds.map((token, k) => ({ token, logprob: topVals[k]! - logSumExp })) };
}
