import { LlmosError } from "../errors.js";
import type { ResponseStore, StoredResponse } from "./repository.js";
import type { Now } from "./time-scale.js";

/**
 * Responses of `/v1/responses` kept for `GET /v1/responses/{id}` and `previous_response_id`. A response belongs
 * to the key that created it: any other caller gets the same 404 as for an id that never existed, so ids cannot
 * be probed across keys. Responses expire after `ttlMs` (LLMOS_RESPONSES_TTL, default 30 days); expired ones are
 * never returned and are removed as new ones are stored (at most once a minute).
 */
export class StoredResponses {
  private lastPurge = 0;

  constructor(
    private readonly store: ResponseStore,
    private readonly ttlMs: number,
    private readonly now: Now = Date.now,
  ) {}

  /** Stores a response under `keyId` (null: no key). */
  async save(r: Omit<StoredResponse, "createdAt" | "expiresAt"> & { createdAt?: number }): Promise<void> {
    const now = this.now();
    await this.store.insert({ ...r, createdAt: r.createdAt ?? now, expiresAt: now + this.ttlMs });
    if (now - this.lastPurge >= 60_000) {
      this.lastPurge = now;
      await this.store.deleteExpired(now);
    }
  }

  /** The response `id` of `keyId`; 404 `not_found` when it does not exist, expired, or is another key's. */
  async get(id: string, keyId: string | null): Promise<StoredResponse> {
    const found = await this.store.get(id, this.now());
    if (!found || found.keyId !== keyId)
      throw new LlmosError("not_found", `response '${id}' not found`, { param: "response_id" });
    return found;
  }

  /** Deletes the response `id` of `keyId` (404 like `get` otherwise). */
  async delete(id: string, keyId: string | null): Promise<void> {
    await this.get(id, keyId);
    await this.store.delete(id);
  }
}
