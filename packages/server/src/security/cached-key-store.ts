import { LlmosError } from "../errors.js";
import type { KeyStore, StoredKey } from "./repository.js";
import type { Now } from "./time-scale.js";

export interface CachedKeyStoreOptions {
  /** How long a key read before the store became unreachable stays usable. */
  outageTtlMs: number;
  /** How long a cached key is served without asking the store while change notifications arrive. Default 60 s. */
  freshMs?: number;
  now?: Now;
}

interface Entry {
  key: StoredKey | undefined;
  at: number;
}

/**
 * A KeyStore in front of a shared one (PostgreSQL in a cluster): keys are served from memory while change
 * notifications arrive (`listening(true)`; a `key.changed` notification calls `invalidate`), so authenticating does
 * not cost a database round trip; without notifications every read goes to the store. While the store is
 * unreachable, a key read less than `outageTtlMs` ago is still accepted (and a revocation made meanwhile cannot
 * reach this node: that is the bound an outage puts on revocation, docs/cluster.md); older ones fail with
 * `unavailable`. Writes go straight to the store.
 */
export class CachedKeyStore implements KeyStore {
  private readonly cache = new Map<string, Entry>();
  private activeCount: Entry & { n: number } = { key: undefined, at: -Infinity, n: 0 };
  private notified = false;
  private readonly now: Now;
  private readonly freshMs: number;

  constructor(
    private readonly inner: KeyStore,
    private readonly options: CachedKeyStoreOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.freshMs = options.freshMs ?? 60_000;
  }

  /**
   * Whether change notifications are arriving. Each change of state empties the cache: what was cached while none
   * arrived, or before they stopped, may have missed a revocation.
   */
  listening(on: boolean): void {
    if (on === this.notified) return;
    this.notified = on;
    this.cache.clear();
  }

  /** Forgets a key (it changed elsewhere), or every key. */
  invalidate(id?: string): void {
    if (id === undefined) this.cache.clear();
    else this.cache.delete(id);
  }

  async get(id: string): Promise<StoredKey | undefined> {
    const now = this.now();
    const cached = this.cache.get(id);
    if (cached && this.notified && now - cached.at < this.freshMs) return cached.key;
    try {
      const key = await this.inner.get(id);
      // Only keys that exist are kept: a key created elsewhere a moment later must work at once.
      if (key) this.cache.set(id, { key, at: now });
      else this.cache.delete(id);
      return key;
    } catch (error) {
      if (cached?.key && isUnavailable(error) && now - cached.at < this.options.outageTtlMs) return cached.key;
      throw error;
    }
  }

  async countActive(): Promise<number> {
    const now = this.now();
    try {
      const n = await this.inner.countActive();
      this.activeCount = { key: undefined, at: now, n };
      return n;
    } catch (error) {
      if (isUnavailable(error) && now - this.activeCount.at < this.options.outageTtlMs) return this.activeCount.n;
      throw error;
    }
  }

  list(): Promise<StoredKey[]> {
    return this.inner.list();
  }

  async insert(key: StoredKey): Promise<void> {
    await this.inner.insert(key);
  }

  async updateSecret(id: string, secretHash: string, rotatedAt: number): Promise<boolean> {
    this.cache.delete(id);
    const changed = await this.inner.updateSecret(id, secretHash, rotatedAt);
    this.cache.delete(id);
    return changed;
  }

  async revoke(id: string, revokedAt: number): Promise<boolean> {
    this.cache.delete(id);
    const changed = await this.inner.revoke(id, revokedAt);
    this.cache.delete(id);
    return changed;
  }
}

function isUnavailable(error: unknown): boolean {
  return error instanceof LlmosError && error.code === "unavailable";
}
