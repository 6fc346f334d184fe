import path from "node:path";
import { LlmosError } from "../../errors.js";
import type { BlobRef } from "../manifest.js";
import { emptyDefinition } from "../definition.js";
import { ensureFreeSpace } from "../disk-space.js";
import { parseModelName } from "../names.js";
import type { ModelRecord } from "../record.js";
import type { PullTarget } from "../registrar.js";
import { DEFAULT_DOWNLOAD_TUNING, discard, downloadFile, probe, type DownloadTuning } from "./download.js";
import { listRepoFiles, pickGgufFile } from "./hub.js";
import { defaultNameFor, parsePullReference } from "./reference.js";
import { pullFromRegistry } from "../registry/registry-pull.js";
import type { BlobPuller, FetchBlobJob, PullDefaults, PullOptions, PullProgress } from "./pull-types.js";

export type { BlobPuller, FetchBlobJob, PullDefaults, PullOptions, PullProgress } from "./pull-types.js";
import { PullUrlPolicy } from "./url-policy.js";

interface SharedDownload {
  promise: Promise<BlobRef>;
  listeners: Set<(event: PullProgress) => void>;
  /** Callers that joined and have not finished registering. */
  users: number;
  controller: AbortController;
  settled: boolean;
  /** Lets go of the pin that keeps the new blob from gc until every caller has registered its manifest. */
  unpin?: () => void;
}

/**
 * Pulls models into a store from the Hugging Face Hub or a URL. One per store: it is what makes two pulls of the
 * same file in one process share one download.
 */
export class Puller implements BlobPuller {
  readonly #downloads = new Map<string, SharedDownload>();
  /** Cancelled downloads still saving their resume state, by key. */
  readonly #winding = new Map<string, Promise<unknown>>();
  readonly policy: PullUrlPolicy;

  constructor(
    readonly store: PullTarget,
    readonly defaults: PullDefaults = {},
  ) {
    this.policy = defaults.policy ?? new PullUrlPolicy();
  }

  /**
   * Pulls `reference` and registers it. See `parsePullReference` for the accepted forms.
   * @throws `invalid_reference`, `invalid_model_name`, `forbidden` (gated repo), `not_found`, `upstream_error`
   *   (after retries; digest mismatch), `invalid_model_file`, `insufficient_storage`, `client_closed` (aborted).
   */
  async pull(reference: string, options: PullOptions = {}): Promise<ModelRecord> {
    const ref = parsePullReference(reference);
    if (options.name !== undefined) parseModelName(options.name);
    if (ref.kind === "oci") return pullFromRegistry(this, ref.oci, options);
    const emit = options.onProgress ?? (() => {});
    const signal = options.signal ?? new AbortController().signal;
    const endpoint = (options.endpoint ?? this.defaults.endpoint ?? "https://huggingface.co").replace(/\/+$/, "");
    const token = options.hfToken ?? this.defaults.token;
    const doFetch = options.fetch ?? fetch;
    const tuning: DownloadTuning = { ...DEFAULT_DOWNLOAD_TUNING, ...this.defaults.tuning, ...options.tuning };
    const revision = options.revision ?? "main";
    // Every URL fetched (the Hub, the file, each redirect) goes through the pull URL policy.
    const checkUrl = this.policy.check;
    const scope = token === undefined ? { endpoint, checkUrl } : { endpoint, token, checkUrl };
    signal.throwIfAborted?.();
    emit({ status: "pulling manifest" });

    let url: string;
    let what: string;
    let expectedDigest: string | undefined;
    let expectedSize: number | undefined;
    let picked: string | undefined;
    if (ref.kind === "hub") {
      const listing = { endpoint, token, fetch: doFetch, signal, checkUrl };
      const files = await listRepoFiles(ref.repo, revision, listing).catch((e: unknown) => {
        throw signal.aborted ? cancelled() : e;
      });
      let entry;
      if (ref.file !== undefined) {
        entry = files.find((f) => f.type === "file" && f.path === ref.file);
        if (!entry) {
          const ggufs = files.filter((f) => /\.gguf$/i.test(f.path)).map((f) => f.path);
          throw new LlmosError(
            "not_found",
            `not found on Hugging Face: ${ref.file} in ${ref.repo} (revision ${revision}); GGUF files there: ${ggufs.join(", ") || "none"}`,
          );
        }
      } else {
        entry = pickGgufFile(ref.repo, files, ref.quant);
      }
      picked = entry.path;
      const encodedPath = entry.path.split("/").map(encodeURIComponent).join("/");
      url = `${endpoint}/${ref.repo}/resolve/${encodeURIComponent(revision)}/${encodedPath}`;
      what = `hf.co/${ref.repo} file ${entry.path} (revision ${revision})`;
      if (entry.lfs && /^[0-9a-f]{64}$/.test(entry.lfs.oid)) expectedDigest = `sha256:${entry.lfs.oid}`;
      expectedSize = entry.lfs?.size ?? entry.size;
    } else {
      this.policy.checkTarget(ref.url);
      url = ref.url;
      what = ref.url;
    }
    const name = options.name ?? defaultNameFor(ref, picked);
    parseModelName(name);

    const blob = await this.#sharedDownload(
      expectedDigest ?? `url:${url}`,
      signal,
      emit,
      (innerSignal, broadcast) =>
        this.fetchBlob({
          url,
          what,
          scope,
          hub: ref.kind === "hub",
          expectedDigest,
          expectedSize,
          fetch: doFetch,
          tuning,
          signal: innerSignal,
          emit: broadcast,
          label: picked ?? new URL(url).pathname,
        }),
      async (ref) => {
        emit({ status: "writing manifest" });
        const record = await this.store.register(name, { model: ref, definition: emptyDefinition(reference) });
        emit({ status: "success" });
        return record;
      },
    );
    return blob;
  }

  /** Cancels every download in flight and waits until they have stopped (partial files stay for resume). */
  async dispose(): Promise<void> {
    const all = [...this.#downloads.values()].map((d) => {
      d.controller.abort(cancelled());
      return d.promise;
    });
    await Promise.allSettled([...all, ...this.#winding.values()]);
  }

  /** Joins (or starts) the download of `key`, then runs `finish` with the blob while it is pinned. */
  async #sharedDownload(
    key: string,
    signal: AbortSignal,
    listener: (event: PullProgress) => void,
    start: (signal: AbortSignal, emit: (event: PullProgress) => void) => Promise<{ ref: BlobRef; unpin: () => void }>,
    finish: (ref: BlobRef) => Promise<ModelRecord>,
  ): Promise<ModelRecord> {
    const { ref, release } = await this.acquireBlob(key, signal, listener, start);
    try {
      return await finish(ref);
    } finally {
      release();
    }
  }

  /**
   * Joins (or starts) the download of `key` and resolves with the blob, kept from gc until `release()` (call it
   * after the manifest that references the blob is written, or on failure). Two pulls of one blob share one
   * download; a caller that leaves (abort) before it is done stops it only when nobody else waits.
   * @internal used by registry pulls.
   */
  async acquireBlob(
    key: string,
    signal: AbortSignal,
    listener: (event: PullProgress) => void,
    start: (signal: AbortSignal, emit: (event: PullProgress) => void) => Promise<{ ref: BlobRef; unpin: () => void }>,
  ): Promise<{ ref: BlobRef; release: () => void }> {
    let shared = this.#downloads.get(key);
    if (!shared) {
      const controller = new AbortController();
      const listeners = new Set<(event: PullProgress) => void>();
      const created: SharedDownload = { listeners, users: 0, controller, settled: false, promise: undefined as never };
      // A cancelled download of the same file may still be winding down (saving its resume state): let it finish
      // before a new one touches the same partial file.
      const previous = this.#winding.get(key);
      created.promise = (
        previous
          ? previous.then(
              () => undefined,
              () => undefined,
            )
          : Promise.resolve()
      )
        .then(() => start(controller.signal, (event) => listeners.forEach((l) => l(event))))
        .then(({ ref, unpin }) => {
          created.unpin = unpin;
          if (created.users === 0) unpin();
          return ref;
        })
        .finally(() => {
          created.settled = true;
          if (this.#downloads.get(key) === created) this.#downloads.delete(key);
          if (this.#winding.get(key) === created.promise) this.#winding.delete(key);
        });
      created.promise.catch(() => {}); // observed by the callers below
      this.#downloads.set(key, created);
      shared = created;
    }
    const s = shared;
    s.users++;
    s.listeners.add(listener);
    let left = false;
    const leave = (): void => {
      if (left) return;
      left = true;
      s.listeners.delete(listener);
      s.users--;
      if (s.users === 0) {
        if (s.settled || s.unpin) {
          s.unpin?.();
        } else {
          // Nobody wants it any more: cancel, and let a later pull start afresh (after this one has wound down).
          s.controller.abort(cancelled());
          if (this.#downloads.get(key) === s) this.#downloads.delete(key);
          this.#winding.set(key, s.promise);
        }
      }
    };
    try {
      const ref = await new Promise<BlobRef>((resolve, reject) => {
        if (signal.aborted) return reject(cancelled());
        const onAbort = (): void => reject(cancelled());
        signal.addEventListener("abort", onAbort, { once: true });
        s.promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
      });
      s.listeners.delete(listener);
      return { ref, release: leave };
    } catch (error) {
      leave();
      throw error;
    }
  }

  /**
   * Probe, download (or reuse), verify, validate and commit one blob. Runs once per shared download.
   * @internal used by registry pulls through {@link acquireBlob}.
   */
  async fetchBlob(job: FetchBlobJob): Promise<{ ref: BlobRef; unpin: () => void }> {
    const store = this.store;
    const existing = async (digest: string): Promise<{ ref: BlobRef; unpin: () => void } | undefined> => {
      const unpin = store.pinBlob(digest);
      const size = await store.blobs.size(digest);
      if (size === undefined) {
        unpin();
        return undefined;
      }
      job.emit({ status: `pulling ${digest.slice(7, 19)}`, digest, total: size, completed: size });
      return { ref: { digest, size }, unpin };
    };
    if (job.expectedDigest) {
      const have = await existing(job.expectedDigest);
      if (have) return have;
    }
    const probed = await probe(job.url, job.what, job.scope, job.hub, job.fetch, job.tuning, job.signal).catch(
      (e: unknown) => {
        throw job.signal.aborted ? cancelled() : e;
      },
    );
    if (job.expectedDigest && probed.announcedDigest && probed.announcedDigest !== job.expectedDigest) {
      throw new LlmosError(
        "upstream_error",
        `${job.what}: the tree listing says ${job.expectedDigest} but the download announces ${probed.announcedDigest}`,
      );
    }
    const expectedDigest = job.expectedDigest ?? probed.announcedDigest;
    if (!job.expectedDigest && expectedDigest) {
      const have = await existing(expectedDigest);
      if (have) return have;
    }
    if (probed.size === undefined && job.expectedSize !== undefined) probed.size = job.expectedSize;
    const status = expectedDigest ? `pulling ${expectedDigest.slice(7, 19)}` : `pulling ${path.basename(job.label)}`;
    let lastEmit = -1;
    const downloaded = await downloadFile({
      url: job.url,
      what: job.what,
      scope: job.scope,
      hub: job.hub,
      probe: probed,
      expectedDigest,
      partialDir: store.dirs.partial,
      tmpDir: store.dirs.tmp,
      tuning: job.tuning,
      fetch: job.fetch,
      signal: job.signal,
      ensureSpace: (bytes) => ensureFreeSpace(store.dirs.partial, bytes, store.reserveBytes, job.what),
      unsizedCap: () => store.unsizedCap(store.dirs.partial),
      log: (obj, msg) => store.logger?.warn(obj, msg),
      onProgress: (completed, total) => {
        // About one event per percent (and the first and last), not one per network chunk.
        const step = Math.max(64 * 1024, Math.floor((total ?? 0) / 100));
        if (completed !== total && lastEmit >= 0 && completed - lastEmit < step) return;
        lastEmit = completed;
        const event: PullProgress = { status, completed };
        if (expectedDigest) event.digest = expectedDigest;
        if (total !== undefined) event.total = total;
        job.emit(event);
      },
    });
    job.emit({ status: "verifying sha256 digest", digest: downloaded.digest });
    try {
      await store.gguf.check(downloaded.path, job.what);
    } catch (error) {
      await discard(downloaded.path, downloaded.sidecarPath);
      throw error;
    }
    const ref = await store.commitTempBlob({
      tmpPath: downloaded.path,
      digest: downloaded.digest,
      size: downloaded.size,
    });
    await discard(downloaded.path, downloaded.sidecarPath);
    return ref;
  }
}

function cancelled(): LlmosError {
  return new LlmosError("client_closed", "pull cancelled; the partial download is kept and resumes on the next pull");
}
