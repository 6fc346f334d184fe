/**
 * The policy seam: what to evict, how long to keep an idle model, what to load before anyone asks. The decision
 * functions (decisions.ts) enforce the rules no policy may break (busy, pinned and keep_alive -1 models are never
 * evicted; one load at a time) and ask the policy only for choices among what is allowed. `LruPolicy` is the
 * default; a learned keep-alive policy or a cluster's placement implements the same interface and is passed to
 * the scheduler (`new Scheduler(..., { policy })`).
 */
import { chooseEvictions } from "./placement.js";
import type { ModelView, SchedulerSnapshot } from "./snapshot.js";

export interface SchedulingPolicy {
  readonly name: string;
  /**
   * Which of `candidates` (idle, evictable models) to evict, in order, to free `neededBytes` for `model`;
   * undefined when no choice frees enough. The names returned must be candidates.
   */
  chooseVictims(
    candidates: readonly ModelView[],
    request: { model: string; neededBytes: number },
    snapshot: SchedulerSnapshot,
  ): string[] | undefined;
  /**
   * When the idle model `model` should be unloaded (ms since the epoch; at or before `snapshot.now` means now), or
   * null to keep it until memory is needed. Only asked for idle models that are neither pinned nor kept forever.
   */
  expiresAt(model: ModelView, snapshot: SchedulerSnapshot): number | null;
  /** Models (names as a client would give them) to load before any request asks for them. */
  preload(snapshot: SchedulerSnapshot): string[];
}

/**
 * Today's policy: evict the least recently used idle model that alone frees enough, else idle models in LRU order
 * until enough is free (placement.ts); unload an idle model its keep-alive after it went idle; preload nothing.
 */
export class LruPolicy implements SchedulingPolicy {
  readonly name: string = "lru";

  chooseVictims(candidates: readonly ModelView[], request: { neededBytes: number }): string[] | undefined {
    const chosen = chooseEvictions(
      candidates.map((m) => ({ key: m.name, bytes: m.reservedBytes, lastUsed: m.lastUsed })),
      request.neededBytes,
    );
    return chosen?.map((c) => c.key);
  }

  expiresAt(model: ModelView): number | null {
    if (model.idleSince === null) return null;
    return model.idleSince + Math.max(0, model.keepAliveMs);
  }

  preload(): string[] {
    return [];
  }
}
