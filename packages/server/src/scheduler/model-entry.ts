import type { ModelDetails } from "@llmos/protocol";
import type { RunnerHandle } from "../runtime/runner-handle.js";
import { FairQueue, type Priority } from "./fair-queue.js";
import type { MemoryEstimate, ModelShape } from "./memory-estimator.js";
import type { OffloadPlan } from "./offload.js";
import type { KvCacheTypes } from "./kv-cache.js";

/** What the scheduler needs to know about a model in the store. */
export interface ModelSpec {
  name: string;
  digest: string;
  modelPath: string;
  adapterPaths: string[];
  size: number;
  details: ModelDetails;
  shape: ModelShape;
  trainContextSize: number;
  /** Defaults from the model definition (PARAMETER num_ctx, num_parallel, kv_cache_type[_k|_v]). */
  defaults: { contextSize?: number; parallel?: number; kvCacheType?: Partial<KvCacheTypes> };
  /** Releases the store lease (blobs may be garbage-collected again). */
  release(): void;
}

/** The store, as seen by the scheduler. */
export interface ModelSource {
  /** Canonical `name:tag` for a user-given name (throws invalid_model_name). */
  canonicalName(name: string): string;
  /** Resolves a model and holds a lease on its files until `release()`. */
  acquire(name: string): Promise<ModelSpec>;
}

export interface Waiter {
  /** The entry whose queue holds this waiter (changes when a crashed model's queue moves to a fresh load). */
  home: ModelEntry;
  tenant: string;
  priority: Priority;
  enqueuedAt: number;
  resolve: (lease: SlotLease) => void;
  reject: (error: unknown) => void;
  cleanup: () => void;
}

/** A granted slot: the runner to use and how to give the slot back. */
export interface SlotLease {
  readonly handle: RunnerHandle;
  readonly model: string;
  readonly contextSize: number;
  /** Milliseconds spent waiting in the queue. */
  readonly queuedMs: number;
  /** Milliseconds this request spent waiting for its model to load (0 if it was loaded). */
  readonly loadMs: number;
  /** Gives the slot back. `keepAliveMs` overrides the model's keep-alive from now on. */
  release(opts?: { keepAliveMs?: number }): void;
}

export type EntryState = "loading" | "ready" | "unloading";

/** A model the scheduler holds: loading, loaded or on its way out, with its queue and slots. */
export class ModelEntry {
  state: EntryState = "loading";
  spec: ModelSpec | undefined;
  handle: RunnerHandle | undefined;
  estimate: MemoryEstimate | undefined;
  /** GPU/RAM split chosen at load (CPU only: no plan). */
  offload: OffloadPlan | undefined;
  measuredRssBytes: number | null = null;
  contextSize = 0;
  slots = 1;
  /** K and V cache element types of the runner's context. */
  kvCacheType: KvCacheTypes = { k: "f16", v: "f16" };
  busy = 0;
  pinned = false;
  /** -1 = never expire. */
  keepAliveMs: number;
  lastUsed = Date.now();
  expiresAt: number | null = null;
  expiryTimer: NodeJS.Timeout | undefined;
  /** True while an explicit load call waits for this entry. */
  explicitLoad = false;
  loadStartedAt = Date.now();
  loaded: Promise<void> | undefined;
  readonly queue = new FairQueue<Waiter>();
  /** Completion times in the last minute, for the observed service rate. */
  readonly completions: number[] = [];

  constructor(
    readonly name: string,
    keepAliveMs: number,
  ) {
    this.keepAliveMs = keepAliveMs;
  }

  get idle(): boolean {
    return this.state === "ready" && this.busy === 0 && this.queue.size === 0;
  }

  /** Evictable under memory pressure: idle, not pinned, not kept alive forever. */
  get evictable(): boolean {
    return this.idle && !this.pinned && this.keepAliveMs !== -1;
  }

  /** Bytes this entry reserves in the RAM budget (the part not offloaded to a GPU). */
  get reservedBytes(): number {
    return this.offload?.ramBytes ?? this.estimate?.total ?? 0;
  }

  /** Bytes this entry is estimated to take in GPU memory. */
  get vramBytes(): number {
    return this.offload?.vramBytes ?? 0;
  }

  recordCompletion(now: number): void {
    this.completions.push(now);
    while (this.completions.length && this.completions[0]! < now - 60_000) this.completions.shift();
  }

  /** Requests completed per second over the last minute (0 when unknown). */
  serviceRate(now: number): number {
    while (this.completions.length && this.completions[0]! < now - 60_000) this.completions.shift();
    if (this.completions.length < 2) return 0;
    const span = (now - this.completions[0]!) / 1000;
    return span > 0 ? this.completions.length / span : 0;
  }

  /** Lets the store lease go and forgets the memory plan (the runner is gone or never started). Idempotent. */
  releaseSpec(): void {
    this.spec?.release();
    this.spec = undefined;
    this.estimate = undefined;
    this.offload = undefined;
  }

  clearExpiry(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    this.expiresAt = null;
  }
}
