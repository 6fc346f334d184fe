/**
 * Which waiting prompts go into the next decode step, and how many tokens of each: a pure decision over the
 * sequences' progress, applied by the batch scheduler (batch-scheduler.ts).
 *
 * The earliest-started prompts go first. With `inTurn` (a model on the CPU), once a prompt completes in a step of at
 * least SHARED_STEP_MIN_TOKENS tokens, no later prompt joins it: on a CPU a prompt costs about the same per token
 * alone or beside others, so evaluating prompts together only delays the first one's first token (four 87-token
 * prompts at once on the 42M model all waited 107 ms for their first token; one after the other they got it after
 * 27, 58, 90 and 122 ms). Below that size a step's own cost dominates, and short prompts still share one. Offloaded
 * to a GPU, prompts evaluated together cost little more than one alone, and share steps up to the budget.
 */

/** A step at least this many tokens long that completes a prompt takes no later prompt's tokens. */
export const SHARED_STEP_MIN_TOKENS = 32;

/** What the decision reads of a running sequence. */
export interface PromptProgress {
  /** When its generation was asked for (performance.now()). */
  readonly startedAt: number;
  readonly prompt: { readonly length: number };
  /** Prompt tokens already evaluated or found in the slot's cache. */
  readonly promptDone: number;
}

/**
 * Prompt tokens each sequence puts in the next step (sequences not in the map put none), within `budget` tokens,
 * in a step that already holds `stepTokens` (one per generating sequence).
 */
export function promptTakes<R extends PromptProgress>(
  running: readonly R[],
  budget: number,
  stepTokens: number,
  inTurn: boolean,
): Map<R, number> {
  const takes = new Map<R, number>();
  const waiting = running.filter((r) => r.promptDone < r.prompt.length).sort((a, b) => a.startedAt - b.startedAt);
  let tokens = stepTokens;
  for (const r of waiting) {
    if (budget <= 0) break;
    const left = r.prompt.length - r.promptDone;
    const take = Math.min(left, budget);
    takes.set(r, take);
    budget -= take;
    tokens += take;
    if (inTurn && take === left && tokens >= SHARED_STEP_MIN_TOKENS) break;
  }
  return takes;
}
