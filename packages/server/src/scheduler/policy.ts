/**
 * The policy seam: what to evict, how long to keep an idle model, what to load before anyone asks. The decision
 * functions (decisions.ts) enforce the rules no policy may break (busy, pinned and keep_alive -1 models are never
 * evicted; a keep_alive a request or load gave is kept as given; prewarmed models go first when real work needs
 * memory; one load at a time) and ask the policy only for choices among what is allowed. `FixedKeepAlivePolicy`
 * is today's behaviour and the scheduler's default; `policies/` holds the others (`LLMOS_KEEP_POLICY`: lru, gdsf,
 * histogram), passed as `new Scheduler(..., { policy })`.
 */
import { chooseEvictions } from "./placement.js";
import type { SchedulerEvent } from "./events.js";
import type { ModelView, SchedulerSnapshot } from "./snapshot.js";

/** A model a policy predicts will be asked for soon: load it (if there is room) between `from` and `until`. */
export interface PrewarmWindow {
  /** Canonical `name:tag`. */
  model: string;
  /** The end of the request this window follows (ms since the epoch): with `model`, it names the window. */
  after: number;
  /** When to start (ms since the epoch): its files are read into the page cache, then it loads if it fits. */
  from: number;
  /** When the window closes; the policy unloads a prewarmed model nobody used by then. */
  until: number;
  /** Bytes it is expected to reserve (from its last load), for the room check. */
  bytes: number;
}

/** What a policy wants prewarmed now, and when its next window opens (null: none pending). */
export interface PrewarmPlan {
  due: PrewarmWindow[];
  next: number | null;
}

/** Idle models to unload for a runner started ahead, or none and when to ask again (null: at the next event). */
export interface RoomDecision {
  unload: string[];
  askAgainAt: number | null;
}

/** Why a victim is needed: a load some request or call waits for, or a prewarm (which never waits). */
export interface VictimRequest {
  model: string;
  neededBytes: number;
  prewarm?: boolean;
}

export interface SchedulingPolicy {
  /** `fixed`, `lru`, `gdsf`, `histogram`, or a name of its own (tests, a cluster's policy). */
  readonly name: string;
  /**
   * Which of `candidates` (idle, evictable models) to evict, in order, to free `neededBytes` for `model`;
   * undefined when no choice frees enough (or, for a prewarm, none is worth giving up). The names returned must
   * be candidates.
   */
  chooseVictims(
    candidates: readonly ModelView[],
    request: VictimRequest,
    snapshot: SchedulerSnapshot,
  ): string[] | undefined;
  /**
   * When the idle model `model` should be unloaded (ms since the epoch; at or before `snapshot.now` means now), or
   * null to keep it until memory is needed. Only asked for idle models that are neither pinned, kept forever, nor
   * given a keep-alive by a request (those follow it).
   */
  expiresAt(model: ModelView, snapshot: SchedulerSnapshot): number | null;
  /** Models (names as a client would give them) to load, and keep, before any request asks for them. */
  preload(snapshot: SchedulerSnapshot): string[];
  /** Models to load opportunistically ahead of a predicted request (learned policies). */
  prewarm?(snapshot: SchedulerSnapshot): PrewarmPlan;
  /**
   * Which of `candidates` (idle models that may be unloaded now) to unload so that a runner started ahead of the
   * next load fits in the budget (prestart.ts): `neededBytes` more must be free. None: not worth it now, and when
   * to ask again if the answer may change with time alone (a policy without this method never unloads for one).
   * The names returned must be candidates.
   */
  roomForPrestart?(candidates: readonly ModelView[], neededBytes: number, snapshot: SchedulerSnapshot): RoomDecision;
  /** Every scheduler event, in order, before the decisions that follow it (learned policies update state here). */
  observe?(event: SchedulerEvent): void;
  /** One line on why `model` expires when it does, for `/api/ps`. */
  explain?(model: ModelView, snapshot: SchedulerSnapshot): string;
}

/** Evicts the least recently used idle model that alone frees enough, else idle models in LRU order. */
export function lruVictims(candidates: readonly ModelView[], neededBytes: number): string[] | undefined {
  const chosen = chooseEvictions(
    candidates.map((m) => ({ key: m.name, bytes: m.reservedBytes, lastUsed: m.lastUsed })),
    neededBytes,
  );
  return chosen?.map((c) => c.key);
}

/**
 * Today's policy (`fixed`): an idle model unloads its keep-alive (`LLMOS_KEEP_ALIVE`, 5 minutes by default) after
 * it went idle; under memory pressure the least recently used idle models go (placement.ts); nothing is preloaded.
 */
export class FixedKeepAlivePolicy implements SchedulingPolicy {
  readonly name: string = "fixed";

  chooseVictims(candidates: readonly ModelView[], request: VictimRequest): string[] | undefined {
    return lruVictims(candidates, request.neededBytes);
  }

  expiresAt(model: ModelView): number | null {
    if (model.idleSince === null) return null;
    return model.idleSince + Math.max(0, model.keepAliveMs);
  }

  preload(): string[] {
    return [];
  }

  explain(model: ModelView): string {
    return `fixed keep-alive ${Math.round(model.keepAliveMs / 1000)}s after the last request`;
  }
}
