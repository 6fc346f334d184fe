import type { ModelView } from "../snapshot.js";

/**
 * Takes models from `ranked` (first to go first) until `neededBytes` are free, then puts back any that are not
 * needed to reach it (the last ranked first). Undefined when all of them do not free enough.
 */
export function evictInOrder(ranked: readonly ModelView[], neededBytes: number): string[] | undefined {
  if (neededBytes <= 0) return [];
  const chosen: ModelView[] = [];
  let freed = 0;
  for (const m of ranked) {
    if (freed >= neededBytes) break;
    chosen.push(m);
    freed += m.reservedBytes;
  }
  if (freed < neededBytes) return undefined;
  for (let i = chosen.length - 2; i >= 0; i--) {
    if (freed - chosen[i]!.reservedBytes >= neededBytes) {
      freed -= chosen[i]!.reservedBytes;
      chosen.splice(i, 1);
    }
  }
  return chosen.map((m) => m.name);
}
