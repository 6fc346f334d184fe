/**
 * Which waiting prompts go into the next decode step, and how many tokens of each: a pure decision over the
 * sequences' progress, applied by the batch scheduler (batch-scheduler.ts). The earliest-started prompts take the
 * step's budget first (the batch itself stays in sequence-id order), so a prompt that came later never takes the
 * room of one that waits longer.
 *
 * Measured and not used: on a CPU, evaluating prompts that started together one after another (a step that
 * completes a prompt of 32+ tokens taking no later one). The first request's first token came much sooner, but the
 * last one's came 20-40% later than in one shared step, because a CPU evaluates a batch of several prompts faster
 * per token than each alone (docs/performance.md, "Options measured").
 */

/** What the decision reads of a running sequence. */
export interface PromptProgress {
  /** When its generation was asked for (performance.now()). */
  readonly startedAt: number;
  readonly prompt: { readonly length: number };
  /** Prompt tokens already evaluated or found in the slot's cache. */
  readonly promptDone: number;
}

/** Prompt tokens each sequence puts in the next step (sequences not in the map put none), within `budget` tokens. */
export function promptTakes<R extends PromptProgress>(running: readonly R[], budget: number): Map<R, number> {
  const takes = new Map<R, number>();
  const waiting = running.filter((r) => r.promptDone < r.prompt.length).sort((a, b) => a.startedAt - b.startedAt);
  for (const r of waiting) {
    if (budget <= 0) break;
    const take = Math.min(r.prompt.length - r.promptDone, budget);
    takes.set(r, take);
    budget -= take;
  }
  return takes;
}
