/**
 * Which sequence (slot) a new prompt runs on, and how much of what the slots hold in their KV cells it reuses.
 * A pure decision over a snapshot of the slots; `SlotTable` applies it.
 *
 * Slots keep the cells of finished requests, so a chat client that resends the conversation finds it cached and
 * only its new suffix is evaluated (llama-server's "slot selection by LCP similarity", Ollama's cache slots). Beyond
 * those: a prefix another slot holds (a long system prompt, a few-shot preamble), even one still generating, can be
 * copied into the chosen slot instead of being evaluated again there (vLLM's automatic prefix caching does this with
 * blocks; here it is `llama_memory_seq_cp`).
 *
 * The choice minimises a cost counted in prompt tokens: the tokens the request must evaluate, plus the cached
 * tokens it destroys (another conversation's cache, worth about what re-evaluating it would cost when it returns),
 * plus the price of a copy. So a continuing conversation stays on its slot, a new conversation that shares only a
 * system prompt with a cached one gets the prefix copied to a free slot rather than cutting the other's tail, and
 * with every slot holding something, the one losing the least is overwritten. When no slot shares enough of the
 * prompt (`minMatchFraction`), the least recently used slot is taken (empty slots first).
 */

/** What one slot holds, as the decision sees it. */
export interface SlotSnapshot {
  readonly id: number;
  /** The tokens whose KV cells the slot holds: position i holds tokens[i]. */
  readonly tokens: ArrayLike<number>;
  /** A running request owns it (it can still lend its prefix for a copy). */
  readonly busy: boolean;
  /** Larger = used more recently; 0 = never used. */
  readonly lastUsed: number;
}

export interface ChooseSlotOptions {
  /** Reuse cached cells at all (false: the request opted out, or the cache is off): the slot is cleared. */
  reuse: boolean;
  /** What copying a prefix from one slot to another costs, in prompt tokens evaluated. Infinity: no copies. */
  copyCostTokens: number;
  /**
   * A shared prefix shorter than this fraction of the prompt (and always one of no tokens) does not make a slot a
   * match: sharing BOS and a chat template's header says nothing about which slot to overwrite. llama-server's
   * `--slot-prompt-similarity` default is 0.1.
   */
  minMatchFraction: number;
}

/** The decision: run on `seqId`, keeping its first `reuse` cells, after copying them from `copyFrom` if set. */
export interface SlotChoice {
  seqId: number;
  /** Prompt tokens whose cells are reused (never the whole prompt: the last token is always evaluated). */
  reuse: number;
  /** The slot whose first `reuse` cells are copied into `seqId` first; null: `seqId`'s own cells are kept. */
  copyFrom: number | null;
}

/** Length of the common prefix of `a` and `b`. */
export function commonPrefixLength(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** Empty slots first (lowest id), then the least recently used. */
function byEviction(a: SlotSnapshot, b: SlotSnapshot): number {
  const ea = a.tokens.length === 0 ? 0 : 1;
  const eb = b.tokens.length === 0 ? 0 : 1;
  return ea - eb || a.lastUsed - b.lastUsed || a.id - b.id;
}

interface Candidate {
  choice: SlotChoice;
  cost: number;
  target: SlotSnapshot;
}

/** Choose a free slot for `prompt`; null when every slot is busy. */
export function chooseSlot(
  slots: readonly SlotSnapshot[],
  prompt: ArrayLike<number>,
  opts: ChooseSlotOptions,
): SlotChoice | null {
  const free = slots.filter((s) => !s.busy).sort(byEviction);
  if (free.length === 0) return null;
  if (!opts.reuse) return { seqId: free[0]!.id, reuse: 0, copyFrom: null };
  // At least the last prompt token is evaluated: its logits give the first generated token.
  const maxReuse = Math.max(0, prompt.length - 1);
  const shared = new Map(slots.map((s) => [s.id, Math.min(commonPrefixLength(s.tokens, prompt), maxReuse)]));
  const lcp = (s: SlotSnapshot) => shared.get(s.id)!;

  let donor: SlotSnapshot | undefined;
  for (const s of slots) if (!donor || lcp(s) > lcp(donor) || (lcp(s) === lcp(donor) && !s.busy)) donor = s;
  if (!donor || lcp(donor) < Math.max(1, Math.ceil(opts.minMatchFraction * prompt.length))) {
    const lru = free[0]!;
    return { seqId: lru.id, reuse: lcp(lru), copyFrom: null };
  }

  const candidates: Candidate[] = [];
  for (const s of free) {
    const keep = lcp(s);
    candidates.push({
      choice: { seqId: s.id, reuse: keep, copyFrom: null },
      cost: prompt.length - keep + (s.tokens.length - keep),
      target: s,
    });
  }
  if (Number.isFinite(opts.copyCostTokens)) {
    const reuse = lcp(donor);
    for (const t of free) {
      if (t.id === donor.id || lcp(t) >= reuse) continue;
      candidates.push({
        choice: { seqId: t.id, reuse, copyFrom: donor.id },
        cost: prompt.length - reuse + t.tokens.length + opts.copyCostTokens,
        target: t,
      });
    }
  }
  // Cheapest; on a tie no copy, then the slot that loses least, then eviction order.
  candidates.sort(
    (a, b) =>
      a.cost - b.cost ||
      Number(a.choice.copyFrom !== null) - Number(b.choice.copyFrom !== null) ||
      lost(a) - lost(b) ||
      byEviction(a.target, b.target),
  );
  return candidates[0]!.choice;
}

/** Cached tokens of the target slot that the choice destroys. */
function lost(c: Candidate): number {
  return c.target.tokens.length - (c.choice.copyFrom === null ? c.choice.reuse : 0);
}
