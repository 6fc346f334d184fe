/**
 * One model's usage record and the pure steps that update it: a request arrived (an idle gap if the model had
 * nothing in flight, a count in its hour), a request ended, a load took this long and this much memory, time
 * passed (old weights decay with a half-life), a batch of samples joins a stored record (mergeUsage: how the nodes
 * of a cluster add up). The usage model (usage-model.ts) applies them as scheduler events come; the record is what
 * the repository stores.
 */
import type { StoredModelUsage } from "../../usage-store/index.js";
import { UsageStoreCorruptError } from "../../usage-store/index.js";
import { BINS, HISTOGRAM_LAYOUT, binOf, emptyHistogram } from "./idle-histogram.js";
import { HOURS, emptyHourly, hourOf } from "./time-of-day.js";

export interface ModelUsage {
  model: string;
  /** Idle-gap histogram weights (idle-histogram.ts). */
  gaps: number[];
  /** Their sum (kept with them). */
  gapTotal: number;
  /** Requests per hour of the day (time-of-day.ts). */
  hourly: number[];
  /** Requests seen (decayed). */
  requests: number;
  /** Load time, ms (exponentially smoothed); null before the first load. */
  loadMs: number | null;
  /** Bytes reserved when last loaded; null before the first load. */
  sizeBytes: number | null;
  /** When the model was first asked for or loaded. */
  firstSeen: number;
  lastArrival: number | null;
  /** Weights are decayed to this time. */
  updatedAt: number;
  /** When its last request ended with none left in flight (this process only: a gap never spans a restart). */
  lastEnd: number | null;
  /** Requests arrived and not yet ended (this process only). */
  inflight: number;
  /** Bumped whenever the histogram changes (caches of derived plans key on it). */
  version: number;
}

/** Weight of the newest sample against the running load-time average. */
const LOAD_SMOOTHING = 0.3;

export function newUsage(model: string, now: number): ModelUsage {
  return {
    model,
    gaps: emptyHistogram(),
    gapTotal: 0,
    hourly: emptyHourly(),
    requests: 0,
    loadMs: null,
    sizeBytes: null,
    firstSeen: now,
    lastArrival: null,
    updatedAt: now,
    lastEnd: null,
    inflight: 0,
    version: 0,
  };
}

/** Multiplies every weight by 2^(-elapsed / halfLife) and moves `updatedAt` to `now`. */
export function decayTo(u: ModelUsage, now: number, halfLifeMs: number): void {
  const elapsed = now - u.updatedAt;
  if (elapsed <= 0) return;
  const factor = 2 ** (-elapsed / halfLifeMs);
  for (let i = 0; i < u.gaps.length; i++) u.gaps[i]! *= factor;
  u.gapTotal *= factor;
  for (let i = 0; i < u.hourly.length; i++) u.hourly[i]! *= factor;
  u.requests *= factor;
  u.updatedAt = now;
}

/**
 * A request for the model arrived at `at`. Returns the histogram bin of the idle gap it closed, or null (the model
 * had a request in flight, or none had ended yet in this process).
 */
export function recordArrival(u: ModelUsage, at: number, o: { dayMs: number; halfLifeMs: number }): number | null {
  const gapBin = u.inflight === 0 && u.lastEnd !== null ? binOf(Math.max(0, at - u.lastEnd)) : null;
  addRequest(u, at, gapBin, o);
  u.inflight++;
  return gapBin;
}

/** Counts one request at `at` (its hour, the total) and the idle gap before it when `gapBin` is not null. */
export function addRequest(
  u: ModelUsage,
  at: number,
  gapBin: number | null,
  o: { dayMs: number; halfLifeMs: number },
): void {
  decayTo(u, at, o.halfLifeMs);
  if (gapBin !== null) {
    u.gaps[gapBin]! += 1;
    u.gapTotal += 1;
    u.version++;
  }
  u.requests += 1;
  u.hourly[hourOf(at, o.dayMs)]! += 1;
  u.lastArrival = Math.max(u.lastArrival ?? at, at);
}

/** A request ended (finished, turned away or cancelled) at `at`. */
export function recordEnd(u: ModelUsage, at: number): void {
  u.inflight = Math.max(0, u.inflight - 1);
  if (u.inflight === 0) u.lastEnd = at;
}

/** The model loaded in `loadMs` and reserves `bytes`. */
export function recordLoad(u: ModelUsage, loadMs: number, bytes: number): void {
  u.loadMs = u.loadMs === null ? loadMs : u.loadMs + LOAD_SMOOTHING * (loadMs - u.loadMs);
  u.sizeBytes = bytes;
}

export function toStored(u: ModelUsage): StoredModelUsage {
  return {
    model: u.model,
    layout: HISTOGRAM_LAYOUT,
    gaps: [...u.gaps],
    hourly: [...u.hourly],
    requests: u.requests,
    loadMs: u.loadMs,
    sizeBytes: u.sizeBytes,
    firstSeen: u.firstSeen,
    lastArrival: u.lastArrival,
    updatedAt: u.updatedAt,
  };
}

/** A stored record, checked. @throws UsageStoreCorruptError naming the model and the field. */
export function fromStored(s: StoredModelUsage): ModelUsage {
  const bad = (what: string) => new UsageStoreCorruptError(`usage of ${JSON.stringify(s.model)}: ${what}`);
  if (typeof s.model !== "string" || s.model.length === 0) throw bad("no model name");
  if (s.layout !== HISTOGRAM_LAYOUT) throw bad(`unknown histogram layout ${String(s.layout)}`);
  const weights = (a: unknown, n: number, what: string) => {
    if (!Array.isArray(a) || a.length !== n || !a.every((v) => Number.isFinite(v) && v >= 0))
      throw bad(`${what} must be ${n} finite non-negative numbers`);
    return [...(a as number[])];
  };
  const optional = (v: unknown, what: string) => {
    if (v === null) return null;
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) throw bad(`${what} must be a non-negative number`);
    return v;
  };
  if (!Number.isFinite(s.requests) || s.requests < 0) throw bad("requests must be a non-negative number");
  if (!Number.isFinite(s.updatedAt)) throw bad("updated_at must be a time");
  if (!Number.isFinite(s.firstSeen)) throw bad("first_seen must be a time");
  const gaps = weights(s.gaps, BINS + 1, "gaps");
  return {
    model: s.model,
    gaps,
    gapTotal: gaps.reduce((a, b) => a + b, 0),
    hourly: weights(s.hourly, HOURS, "hourly"),
    requests: s.requests,
    loadMs: optional(s.loadMs, "load_ms"),
    sizeBytes: optional(s.sizeBytes, "size_bytes"),
    firstSeen: s.firstSeen,
    lastArrival: optional(s.lastArrival, "last_arrival"),
    updatedAt: s.updatedAt,
    lastEnd: null,
    inflight: 0,
    version: 0,
  };
}

/**
 * A stored record plus a batch of new samples (another node's, or this node's since its last write), both decayed
 * to the later of their times: weights add, the load time is smoothed toward the batch's, the batch's size is the
 * newest, first and last times are the earliest and latest. Merging batch by batch gives the record that learning
 * from every sample in one place would give (the load time: up to the smoothing of a batch's loads as one).
 * @throws UsageStoreCorruptError when either record cannot be read (another layout, wrong shapes).
 */
export function mergeUsage(
  stored: StoredModelUsage | undefined,
  batch: StoredModelUsage,
  halfLifeMs: number,
): StoredModelUsage {
  const add = fromStored(batch);
  if (!stored) return toStored(add);
  const base = fromStored(stored);
  const at = Math.max(base.updatedAt, add.updatedAt);
  decayTo(base, at, halfLifeMs);
  decayTo(add, at, halfLifeMs);
  const later = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.max(a, b));
  return toStored({
    ...base,
    gaps: base.gaps.map((w, i) => w + add.gaps[i]!),
    hourly: base.hourly.map((w, i) => w + add.hourly[i]!),
    requests: base.requests + add.requests,
    loadMs:
      add.loadMs === null || base.loadMs === null
        ? (add.loadMs ?? base.loadMs)
        : base.loadMs + LOAD_SMOOTHING * (add.loadMs - base.loadMs),
    sizeBytes: add.sizeBytes ?? base.sizeBytes,
    firstSeen: Math.min(base.firstSeen, add.firstSeen),
    lastArrival: later(base.lastArrival, add.lastArrival),
    updatedAt: at,
  });
}
