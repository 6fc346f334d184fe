import { normalizeDigest } from "./digest.js";

/**
 * Blobs that garbage collection must keep although no manifest references them (yet, or any more): blobs of live
 * model leases, blobs a pull committed but has not registered yet, and uploads within their grace time.
 */
export class BlobPins {
  readonly #counts = new Map<string, number>();
  readonly #uploads = new Map<string, number>();
  #wantCollect = false;

  /** @param onFreed called when a pin is released after gc skipped a pinned blob (so it can run again). */
  constructor(private readonly onFreed: () => void) {}

  /** Pins `digest` until the returned function is called (idempotent). */
  pin(digest: string): () => void {
    const d = normalizeDigest(digest);
    this.#counts.set(d, (this.#counts.get(d) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.#counts.get(d) ?? 1) - 1;
      if (n > 0) {
        this.#counts.set(d, n);
        return;
      }
      this.#counts.delete(d);
      if (this.#wantCollect) {
        this.#wantCollect = false;
        this.onFreed();
      }
    };
  }

  /** Live pins on a blob. */
  count(digest: string): number {
    return this.#counts.get(normalizeDigest(digest)) ?? 0;
  }

  /** Keeps an uploaded blob until `until` (epoch ms). */
  holdUpload(digest: string, until: number): void {
    this.#uploads.set(normalizeDigest(digest), until);
  }

  /** Forgets an upload hold (the blob is referenced now, or gone). */
  dropUpload(digest: string): void {
    this.#uploads.delete(digest);
  }

  /**
   * Whether gc must keep an unreferenced blob now. A blob kept only by a pin makes the next release trigger
   * `onFreed`, so removed models' blobs go once their last lease ends.
   */
  keeps(digest: string, now = Date.now()): "pinned" | "upload" | false {
    const until = this.#uploads.get(digest);
    if (until !== undefined) {
      if (until > now) return "upload";
      this.#uploads.delete(digest);
    }
    if (this.#counts.has(digest)) {
      this.#wantCollect = true;
      return "pinned";
    }
    return false;
  }
}
