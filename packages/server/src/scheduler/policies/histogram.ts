/**
 * `histogram`: a keep-alive learned per model from its idle-time histogram (usage/), after "Serverless in the Wild"
 * (ATC'20): after a request ends, a model is kept for a while, or unloaded at once and prewarmed just before its
 * next request is due, as its history says pays.
 *
 * Each model's options (W: when to have it loaded again, T: when to unload it) come from keep-plan.ts. One price of
 * idle memory for the whole node chooses among them: the price at which the learned models, all together, would
 * hold about the idle memory the fixed keep-alive holds on the same histograms (`memoryShare` of it). Memory a
 * model does not need (a job that runs every ten minutes, a burst that is over) goes where it avoids the most cold
 * starts (a model whose next request usually comes within a minute or two).
 *
 * A model with too little history (fewer than `minGaps` idle gaps, or a history younger than an hour of the
 * usage model's day, or most gaps beyond the histogram) keeps the fixed keep-alive, and while no idle model has
 * a trusted history the least recently used goes first, as with `fixed`. Under memory pressure, the idle models
 * least likely to be asked for soon, per byte, go first; a prewarm only evicts models less likely to be
 * used than the one it loads.
 */
import {
  lruVictims,
  type PrewarmPlan,
  type RoomDecision,
  type PrewarmWindow,
  type SchedulingPolicy,
  type VictimRequest,
} from "../policy.js";
import type { ModelView, SchedulerSnapshot } from "../snapshot.js";
import { BINS } from "../usage/idle-histogram.js";
import type { ModelUsage } from "../usage/model-usage.js";
import type { UsageModel } from "../usage/usage-model.js";
import { evictInOrder } from "./evict-in-order.js";
import { arrivalWithin, bestPlan, fixedIdleMs, gapSums, type GapSums, type KeepOption } from "./keep-plan.js";

export interface HistogramPolicyOptions {
  /** The fixed keep-alive (`LLMOS_KEEP_ALIVE`): the fallback, and the reference the idle memory is held to. */
  keepAliveMs: number;
  /** Idle gaps a model needs before its histogram is trusted (default 12). */
  minGaps?: number;
  /**
   * Idle memory the learned models may hold, as a share of what the fixed keep-alive would hold on the same gaps
   * (default 1.1). That estimate ignores evictions, which in practice cut the fixed keep-alive's holding short: at
   * 1.1 the quiet replay held 77% of the fixed policy's idle memory. Holding more blocks the memory prewarms need
   * (the simulator: 44 cold starts at 1.3 against 28 at 1.1 on mixed traffic); at 1.0 and below, Poisson traffic has
   * more cold starts than lru (docs/keep-alive.md).
   */
  memoryShare?: number;
  /**
   * How much less likely than a request for a model not loaded an idle model's request must be for it to be
   * unloaded for a runner started ahead (`roomForPrestart`; default ROOM_SHARE; 0: never).
   */
  roomShare?: number;
}

/** See `roomShare`. */
const ROOM_SHARE = 0.5;
/**
 * `roomForPrestart` unloads a model only once its chance of a request within a keep-alive has fallen below this share
 * of the chance it had when it went idle (simulator, mixed and Poisson traces: 0.5 kept more of the mixed trace's
 * loads from finding a runner, 0.9 added cold starts on the Poisson one).
 */
const ROOM_FALL = 0.7;
/** While `roomForPrestart` finds no model worth unloading, it is asked again after this share of a keep-alive. */
const ROOM_STEP = 0.05;

/** What the policy does with one model now. */
export type KeepPlan =
  { kind: "fixed"; reason: string } | { kind: "learned"; option: KeepOption; gaps: number; leadMs: number };

/** Load time assumed before a model's first measured load (ms). */
const UNKNOWN_LOAD_MS = 1000;
/** A runner's start (spawn to engine up) assumed before one was measured, ms: about this on a 2-core VM. */
const RUNNER_START_MS = 130;

export class HistogramPolicy implements SchedulingPolicy {
  readonly name: string = "histogram";
  private readonly minGaps: number;
  private readonly memoryShare: number;
  private readonly roomShare: number;
  private readonly sums = new Map<string, { version: number; sums: GapSums }>();
  private readonly plans = new Map<string, { sums: GapSums; price: number; option: KeepOption }>();
  private price: { at: number; value: number; sumsVersion: number } | undefined;
  private sumsVersion = 0;

  constructor(
    private readonly usage: UsageModel,
    private readonly options: HistogramPolicyOptions,
  ) {
    this.minGaps = options.minGaps ?? 12;
    this.memoryShare = options.memoryShare ?? 1.1;
    this.roomShare = options.roomShare ?? ROOM_SHARE;
  }

  /** The plan for `model` at `now` (exported for `/api/ps`, the simulator's report and tests). */
  planOf(model: string, now: number): KeepPlan {
    const u = this.usage.get(model);
    if (!u) return { kind: "fixed", reason: "no history" };
    const why = this.untrusted(u, now);
    if (why) return { kind: "fixed", reason: why };
    const price = this.priceAt(now);
    const sums = this.sumsOf(u);
    let cached = this.plans.get(model);
    if (!cached || cached.sums !== sums || cached.price !== price) {
      cached = { sums, price, option: bestPlan(sums, price * this.bytesOf(u), minQuietOf(u)) };
      this.plans.set(model, cached);
    }
    return { kind: "learned", option: cached.option, gaps: this.usage.gapWeight(model, now), leadMs: leadOf(u) };
  }

  expiresAt(model: ModelView, snapshot: SchedulerSnapshot): number | null {
    if (model.idleSince === null) return null;
    const plan = this.planOf(model.name, snapshot.now);
    if (plan.kind === "fixed") return model.idleSince + Math.max(0, model.keepAliveMs);
    const { keepFirstMs, prewarmAtMs, keepUntilMs } = plan.option;
    const lastEnd = this.usage.get(model.name)?.lastEnd ?? null;
    // Timed from the last request's end; an explicit load since (idle clock restarted later) counts as one.
    const anchor = model.prewarmed && lastEnd !== null ? lastEnd : Math.max(lastEnd ?? -Infinity, model.idleSince);
    const age = snapshot.now - anchor;
    if (age < keepFirstMs) return anchor + keepFirstMs;
    if (prewarmAtMs === null) return anchor + keepFirstMs;
    // In the quiet stretch it goes (unless a prewarm for the coming window already loaded it); then the window.
    if (!model.prewarmed && age < prewarmAtMs - plan.leadMs) return snapshot.now;
    return anchor + keepUntilMs;
  }

  prewarm(snapshot: SchedulerSnapshot): PrewarmPlan {
    const due: PrewarmWindow[] = [];
    let next: number | null = null;
    for (const name of this.usage.models()) {
      const u = this.usage.get(name)!;
      if (u.inflight > 0 || u.lastEnd === null || u.sizeBytes === null) continue;
      const plan = this.planOf(name, snapshot.now);
      if (plan.kind !== "learned" || plan.option.prewarmAtMs === null) continue;
      const from = u.lastEnd + plan.option.prewarmAtMs - plan.leadMs;
      const until = u.lastEnd + plan.option.keepUntilMs;
      if (snapshot.now >= until) continue;
      if (snapshot.now >= from) due.push({ model: name, after: u.lastEnd, from, until, bytes: u.sizeBytes });
      else next = Math.min(next ?? Infinity, from);
    }
    return { due, next };
  }

  chooseVictims(
    candidates: readonly ModelView[],
    request: VictimRequest,
    snapshot: SchedulerSnapshot,
  ): string[] | undefined {
    const value = (m: ModelView) => this.keepValue(m, snapshot.now);
    let pool = [...candidates];
    if (request.prewarm) {
      const mine = this.prewarmValue(request.model, snapshot.now);
      pool = pool.filter((m) => value(m) < mine);
    }
    // Without a trusted history among them, the fixed policy's order (least recently used) decides.
    if (pool.every((m) => this.planOf(m.name, snapshot.now).kind === "fixed"))
      return lruVictims(pool, request.neededBytes);
    pool.sort((a, b) => value(a) - value(b) || a.lastUsed - b.lastUsed);
    return evictInOrder(pool, request.neededBytes);
  }

  preload(): string[] {
    return [];
  }

  /**
   * Unloads the idle model least worth keeping (per byte) for a runner started ahead of the next load, when its own
   * request within a keep-alive is less likely than `roomShare` times a request for some model not loaded, and the
   * load time that risks is less than the runner start that saves: such a load finds the runner up instead of
   * evicting and starting one, and if the model unloaded comes back first, it is the load that finds it. (The
   * first rule decides for small models, whose load takes about as long as a runner's start; the second for large
   * ones, where a needless cold start costs seconds to save a tenth of one.) And only once the model's chance has
   * fallen well below what it was when it went idle (ROOM_FALL): its history says its requests have paused. Only
   * models with a trusted history take part, on both sides.
   */
  roomForPrestart(candidates: readonly ModelView[], neededBytes: number, snapshot: SchedulerSnapshot): RoomDecision {
    const K = this.options.keepAliveMs;
    const now = snapshot.now;
    const held = new Set(snapshot.models.map((m) => m.name));
    let noneAsked = 1;
    for (const name of this.usage.models()) {
      const u = this.usage.get(name)!;
      if (held.has(name) || u.lastEnd === null || this.untrusted(u, now) !== undefined) continue;
      noneAsked *= 1 - arrivalWithin(u.gaps, Math.max(0, now - u.lastEnd), K);
    }
    const demand = 1 - noneAsked;
    const victim = candidates
      .filter((m) => m.reservedBytes >= neededBytes && this.planOf(m.name, now).kind === "learned")
      .sort((a, b) => this.keepValue(a, now) - this.keepValue(b, now) || a.lastUsed - b.lastUsed)[0];
    // The chances change as the models' idle times grow: look again a little later.
    const later: RoomDecision = { unload: [], askAgainAt: now + ROOM_STEP * K };
    if (!victim) return later;
    const chance = this.chanceWithin(victim, now, K);
    const startMs = snapshot.prestart?.startMs ?? RUNNER_START_MS;
    const loadMs = this.usage.get(victim.name)?.loadMs ?? UNKNOWN_LOAD_MS;
    if (chance >= this.roomShare * demand || chance * loadMs >= demand * startMs) return later;
    // Only once its history says its requests have paused (a burst is over): on traffic without structure the
    // chance never falls, and unloading would only add cold starts.
    if (chance >= ROOM_FALL * arrivalWithin(this.usage.get(victim.name)!.gaps, 0, K)) return later;
    return { unload: [victim.name], askAgainAt: null };
  }

  explain(model: ModelView, snapshot: SchedulerSnapshot): string {
    const plan = this.planOf(model.name, snapshot.now);
    if (plan.kind === "fixed") return `fixed keep-alive ${seconds(model.keepAliveMs)} (${plan.reason})`;
    const { keepFirstMs, prewarmAtMs, keepUntilMs } = plan.option;
    const from = `learned from ${Math.round(plan.gaps)} idle gaps`;
    const first = keepFirstMs > 0 ? `kept ${seconds(keepFirstMs)} after its last request` : "unloaded after a request";
    if (prewarmAtMs === null) return `${from}: ${first}`;
    return `${from}: ${first}, prewarmed ${seconds(prewarmAtMs)} after it, kept until ${seconds(keepUntilMs)}`;
  }

  /** Why a model's histogram is not trusted yet (undefined: it is). */
  private untrusted(u: Readonly<ModelUsage>, now: number): string | undefined {
    const gaps = this.usage.gapWeight(u.model, now);
    if (gaps < this.minGaps) return `${Math.floor(gaps)} of ${this.minGaps} idle gaps seen`;
    if (now - u.firstSeen < this.usage.dayMs / 24) return "history younger than an hour";
    if (u.gaps[BINS]! > u.gapTotal / 2) return "most idle gaps beyond the histogram's range";
    return undefined;
  }

  /** The histogram's prefix sums, recomputed once it has grown by 5% (or at every gap while it is young). */
  private sumsOf(u: Readonly<ModelUsage>): GapSums {
    const cached = this.sums.get(u.model);
    if (cached && u.version - cached.version < Math.max(1, 0.05 * u.gapTotal)) return cached.sums;
    const sums = gapSums(u.gaps);
    this.sums.set(u.model, { version: u.version, sums });
    this.sumsVersion++;
    return sums;
  }

  /**
   * The price of idle memory (per byte and ms, in cold starts) at which the trusted models, weighted by how often
   * each goes idle, hold `memoryShare` of the idle memory the fixed keep-alive would hold on the same histograms.
   * Recomputed when a histogram changed (at most once a keep-alive) and every four keep-alives; 5% precision.
   */
  private priceAt(now: number): number {
    const K = this.options.keepAliveMs;
    const p = this.price;
    if (p && now - p.at < K) return p.value;
    const trusted = this.usage
      .models()
      .map((m) => this.usage.get(m)!)
      .filter((u) => this.untrusted(u, now) === undefined)
      .map((u) => ({ u, sums: this.sumsOf(u) }));
    if (p && now - p.at < 4 * K && p.sumsVersion === this.sumsVersion) return p.value;
    const models = trusted.map(({ u, sums }) => ({
      rate: this.usage.gapWeight(u.model, now),
      bytes: this.bytesOf(u),
      sums,
      minQuiet: minQuietOf(u),
      fixed: fixedIdleMs(u.gaps, K),
    }));
    let target = 0;
    for (const t of models) target += t.rate * t.bytes * t.fixed;
    target *= this.memoryShare;
    const idleAt = (price: number) => {
      let idle = 0;
      for (const t of models) idle += t.rate * t.bytes * bestPlan(t.sums, price * t.bytes, t.minQuiet).idleMs;
      return idle;
    };
    // Idle memory falls as the price rises: the lowest price within the target, by bisection in log space
    // (starting around the last price, widened until it brackets the target).
    let lo = p ? Math.log(p.value) - 1 : Math.log(1e-24);
    let hi = p ? Math.log(p.value) + 1 : Math.log(1e3);
    while (lo > Math.log(1e-24) && idleAt(Math.exp(lo)) <= target) lo -= 8;
    while (hi < Math.log(1e3) && idleAt(Math.exp(hi)) > target) hi += 8;
    if (models.length === 0 || idleAt(Math.exp(lo)) <= target) hi = lo;
    for (let i = 0; i < 32 && hi - lo > 0.05; i++) {
      const mid = (lo + hi) / 2;
      if (idleAt(Math.exp(mid)) <= target) hi = mid;
      else lo = mid;
    }
    this.price = { at: now, value: Math.exp(hi), sumsVersion: this.sumsVersion };
    return this.price.value;
  }

  /** How much keeping this idle model is worth, per byte: chance of a request within a keep-alive x load cost. */
  private keepValue(m: ModelView, now: number): number {
    const chance = this.chanceWithin(m, now, this.options.keepAliveMs);
    return (chance * (this.usage.get(m.name)?.loadMs ?? UNKNOWN_LOAD_MS)) / Math.max(1, m.reservedBytes);
  }

  /** The chance a request for the loaded model `m` comes within `horizonMs` (a guess without trusted history). */
  private chanceWithin(m: ModelView, now: number, horizonMs: number): number {
    const u = this.usage.get(m.name);
    const anchor = u?.lastEnd ?? m.idleSince ?? m.lastUsed;
    const age = Math.max(0, now - anchor);
    if (u && this.untrusted(u, now) === undefined) return arrivalWithin(u.gaps, age, horizonMs);
    return 0.5 * Math.exp(-age / Math.max(1, horizonMs));
  }

  /** The same worth for a model about to be prewarmed: the chance its request comes within its window. */
  private prewarmValue(name: string, now: number): number {
    const u = this.usage.get(name);
    const plan = this.planOf(name, now);
    if (!u || plan.kind !== "learned" || plan.option.prewarmAtMs === null) return 0;
    const age = Math.max(0, plan.option.prewarmAtMs - plan.leadMs);
    const chance = arrivalWithin(u.gaps, age, plan.option.keepUntilMs - age);
    return (chance * (u.loadMs ?? UNKNOWN_LOAD_MS)) / Math.max(1, this.bytesOf(u));
  }

  /** The model's size; before its first load, the median of the sizes known. */
  private bytesOf(u: Readonly<ModelUsage>): number {
    if (u.sizeBytes !== null) return u.sizeBytes;
    const known = this.usage
      .models()
      .map((m) => this.usage.get(m)!.sizeBytes)
      .filter((b): b is number => b !== null)
      .sort((a, b) => a - b);
    return known.length > 0 ? known[Math.floor(known.length / 2)]! : 1;
  }
}

/** How long before its window a prewarm starts: the read-ahead and the load, with room to spare. */
function leadOf(u: Readonly<ModelUsage>): number {
  return 1.5 * (u.loadMs ?? UNKNOWN_LOAD_MS) + 50;
}

/** The shortest quiet stretch worth unloading for: time to unload, then to read and load again before the window. */
function minQuietOf(u: Readonly<ModelUsage>): number {
  return 2 * leadOf(u);
}

function seconds(ms: number): string {
  return ms >= 100_000 ? `${Math.round(ms / 1000)}s` : `${(ms / 1000).toFixed(1)}s`;
}
