/** A loaded model that could be evicted to make room. */
export interface EvictionCandidate {
  key: string;
  bytes: number;
  lastUsed: number;
}

/**
 * Chooses which idle models to evict to free `needed` bytes. Prefers the fewest evictions: if one model alone
 * frees enough, the least recently used such model goes; otherwise models go in least-recently-used order until
 * enough is free. Returns undefined when all candidates together do not free enough.
 */
export function chooseEvictions(
  candidates: readonly EvictionCandidate[],
  needed: number,
): EvictionCandidate[] | undefined {
  if (needed <= 0) return [];
  const byRecency = [...candidates].sort((a, b) => a.lastUsed - b.lastUsed);
  const single = byRecency.find((c) => c.bytes >= needed);
  if (single) return [single];
  const chosen: EvictionCandidate[] = [];
  let freed = 0;
  for (const c of byRecency) {
    chosen.push(c);
    freed += c.bytes;
    if (freed >= needed) {
      // Drop any chosen model not needed to reach the target (most recently used first).
      for (let i = chosen.length - 2; i >= 0; i--) {
        if (freed - chosen[i]!.bytes >= needed) {
          freed -= chosen[i]!.bytes;
          chosen.splice(i, 1);
        }
      }
      return chosen;
    }
  }
  return undefined;
}
