import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { LlmosError } from "../../errors.js";
import { hashFile } from "../digest.js";
import { exists, writeFileAtomic } from "../fs-atomic.js";
import { backoffMs, fetchFollowing, RetryableError, sleep, type AuthScope } from "./http.js";

/** Tuning of downloads. */
export interface DownloadTuning {
  /** Files larger than this download in parallel byte ranges. Default 64 MiB. */
  parallelThreshold: number;
  /** Connections for parallel ranges. Default 4. */
  connections: number;
  /** Consecutive failed attempts (5xx, dropped connections) tolerated per request before giving up. Default 5. */
  retries: number;
  /** First retry delay; doubles each time. Default 500 ms. */
  retryBaseMs: number;
}

/** Default {@link DownloadTuning}. */
export const DEFAULT_DOWNLOAD_TUNING: Readonly<DownloadTuning> = Object.freeze({
  parallelThreshold: 64 * 1024 * 1024,
  connections: 4,
  retries: 5,
  retryBaseMs: 500,
});

/** What a probe learned about a file before downloading it. */
export interface ProbeResult {
  /** URL the content comes from after redirects (a CDN for the Hub). */
  finalUrl: string;
  size: number | undefined;
  /** `sha256:<hex>` announced by the server (`x-linked-etag`), when it is a sha256. */
  announcedDigest: string | undefined;
  etag: string | undefined;
  acceptRanges: boolean;
}

/** One download job. */
export interface DownloadJob {
  url: string;
  /** Human label for errors ("hf.co/owner/repo file x.gguf"). */
  what: string;
  scope: AuthScope;
  /** True when `url` is on the Hub (errors mention gated repos and HF_TOKEN). */
  hub: boolean;
  probe: ProbeResult;
  /** `sha256:<hex>` the content must hash to, when known (Hub LFS metadata or `x-linked-etag`). */
  expectedDigest: string | undefined;
  partialDir: string;
  tmpDir: string;
  tuning: DownloadTuning;
  fetch: typeof fetch;
  signal: AbortSignal;
  onProgress: (completed: number, total: number | undefined) => void;
  /** Called before bytes are written with how many more are needed. */
  ensureSpace: (bytes: number) => Promise<void>;
  /**
   * The most bytes a download without an announced size may write (the configured cap, further limited by free
   * disk space). Past it the download stops and its partial file is deleted.
   */
  unsizedCap: () => Promise<number>;
  log?: (obj: object, msg: string) => void;
}

/** A finished download: a complete file in `partial/`, fsynced and hashed. */
export interface DownloadedFile {
  path: string;
  sidecarPath: string;
  digest: string;
  size: number;
}

interface Sidecar {
  url: string;
  etag: string | undefined;
  size: number | undefined;
  expectedDigest: string | undefined;
  mode: "sequential" | "parallel";
  /** Parallel mode: `next` is the first byte of the range not yet known to be on disk. */
  ranges?: Array<{ start: number; end: number; next: number }>;
}

/** Asks the server about a file (HEAD, following redirects). Servers that refuse HEAD get a best-effort answer. */
export async function probe(
  url: string,
  what: string,
  scope: AuthScope,
  hub: boolean,
  doFetch: typeof fetch,
  tuning: DownloadTuning,
  signal: AbortSignal,
): Promise<ProbeResult> {
  const followed = await withRetries(tuning, signal, () =>
    fetchFollowing(url, { method: "HEAD", signal }, scope, what, doFetch, hub),
  );
  const { response, finalUrl, hopHeaders } = followed;
  await response.body?.cancel();
  if (response.status === 405 || response.status === 501) {
    return { finalUrl: url, size: undefined, announcedDigest: undefined, etag: undefined, acceptRanges: false };
  }
  const pick = (name: string): string | undefined => {
    for (const h of hopHeaders) {
      const v = h.get(name);
      if (v) return v;
    }
    return undefined;
  };
  const linkedEtag = pick("x-linked-etag")?.replace(/^W\//, "").replace(/"/g, "");
  const linkedSize = Number(pick("x-linked-size"));
  const length = Number(response.headers.get("content-length"));
  const size =
    Number.isSafeInteger(linkedSize) && linkedSize > 0
      ? linkedSize
      : Number.isSafeInteger(length) && response.headers.has("content-length")
        ? length
        : undefined;
  return {
    finalUrl,
    size,
    announcedDigest: linkedEtag && /^[0-9a-f]{64}$/.test(linkedEtag) ? `sha256:${linkedEtag}` : undefined,
    etag: response.headers.get("etag") ?? undefined,
    acceptRanges: /bytes/i.test(response.headers.get("accept-ranges") ?? ""),
  };
}

/** Runs `fn`, retrying {@link RetryableError}s with backoff up to `tuning.retries` times. */
export async function withRetries<T>(tuning: DownloadTuning, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (!(error instanceof RetryableError) || attempt > tuning.retries || signal.aborted)
        throw toFinal(error, signal);
      await sleep(backoffMs(attempt, tuning.retryBaseMs, error.retryAfterMs), signal);
    }
  }
}

function toFinal(error: unknown, signal: AbortSignal): unknown {
  if (signal.aborted) return abortError();
  if (error instanceof RetryableError) {
    return new LlmosError("upstream_error", `${error.message} (gave up after retries)`, undefined, { cause: error });
  }
  return error;
}

function abortError(): LlmosError {
  return new LlmosError("client_closed", "pull cancelled; the partial download is kept and resumes on the next pull");
}

/** Partial-file key: the expected digest when known, else a hash of the URL. */
export function partialKey(url: string, digest: string | undefined): string {
  return digest ? `sha256-${digest.slice(7)}` : `url-${createHash("sha256").update(url).digest("hex").slice(0, 32)}`;
}

/**
 * Downloads a file into `partial/<key>.partial`, resuming what an earlier attempt (even in another process) left
 * there when the sidecar says it is the same file (same URL, size and ETag); hashes it; and checks size and digest.
 * Files above the threshold come in parallel byte ranges. On abort the partial file and sidecar stay for resume.
 * @throws `upstream_error` (digest or size mismatch: the partial file is deleted), `client_closed` (aborted),
 *   `forbidden`/`not_found` (HTTP), `insufficient_storage`.
 */
export async function downloadFile(job: DownloadJob): Promise<DownloadedFile> {
  const key = partialKey(job.url, job.expectedDigest);
  const file = path.join(job.partialDir, `${key}.partial`);
  const sidecarPath = path.join(job.partialDir, `${key}.json`);
  const { probe: p } = job;
  const size = p.size;
  let sidecar = await readSidecar(sidecarPath);
  const same =
    sidecar !== undefined &&
    sidecar.url === job.url &&
    sidecar.size === size &&
    sidecar.etag === p.etag &&
    sidecar.expectedDigest === job.expectedDigest &&
    (await exists(file));
  if (!same) {
    await fs.rm(file, { force: true });
    sidecar = undefined;
  }
  const parallel =
    size !== undefined && p.acceptRanges && job.tuning.connections > 1 && size > job.tuning.parallelThreshold;
  const base = { url: job.url, etag: p.etag, size, expectedDigest: job.expectedDigest };
  let result: { digest: string; size: number } | undefined;
  try {
    if (parallel) {
      const resumed = sidecar?.mode === "parallel" ? sidecar.ranges : undefined;
      result = await downloadParallel(job, file, sidecarPath, base, resumed);
    }
  } catch (error) {
    if (!(error instanceof RangesUnsupported)) throw error;
    job.log?.({ url: job.url }, "server ignored Range in parallel download; falling back to one connection");
    await fs.rm(file, { force: true });
    sidecar = undefined;
  }
  if (!result) {
    if (sidecar?.mode === "parallel") await fs.rm(file, { force: true });
    try {
      result = await downloadSequential(job, file, sidecarPath, base);
    } catch (error) {
      if (!(error instanceof TooLarge)) throw error;
      await discard(file, sidecarPath);
      throw new LlmosError(
        error.unsized ? "payload_too_large" : "upstream_error",
        error.unsized
          ? `${job.what}: the server announced no size and sent more than ${error.limit} bytes (LLMOS_MAX_BLOB_SIZE ` +
              "or free disk space); stopped, and the partial download was deleted"
          : `${job.what}: the server sent more than the ${error.limit} bytes it announced; the download was deleted`,
        { limitBytes: error.limit },
      );
    }
  }
  if (size !== undefined && result.size !== size) {
    await discard(file, sidecarPath);
    throw new LlmosError(
      "upstream_error",
      `${job.what}: got ${result.size} bytes, expected ${size}; the download was deleted`,
    );
  }
  if (job.expectedDigest !== undefined && result.digest !== job.expectedDigest) {
    await discard(file, sidecarPath);
    throw new LlmosError(
      "upstream_error",
      `${job.what}: sha256 mismatch: the server announced ${job.expectedDigest} but the data hashes to ` +
        `${result.digest}; the download was deleted`,
      { expected: job.expectedDigest, actual: result.digest },
    );
  }
  return { path: file, sidecarPath, digest: result.digest, size: result.size };
}

/** Deletes a partial download and its sidecar. */
export async function discard(file: string, sidecarPath: string): Promise<void> {
  await fs.rm(file, { force: true });
  await fs.rm(sidecarPath, { force: true });
}

async function readSidecar(file: string): Promise<Sidecar | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, "utf8")) as Sidecar;
  } catch {
    return undefined;
  }
}

type SidecarBase = Omit<Sidecar, "mode" | "ranges">;

async function hashPrefix(file: string, bytes: number): Promise<Hash> {
  const hash = createHash("sha256");
  if (bytes === 0) return hash;
  for await (const chunk of createReadStream(file, { start: 0, end: bytes - 1, highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
  }
  return hash;
}

async function downloadSequential(
  job: DownloadJob,
  file: string,
  sidecarPath: string,
  base: SidecarBase,
): Promise<{ digest: string; size: number }> {
  const total = job.probe.size;
  let offset = (await fs.stat(file).catch(() => ({ size: 0 }))).size;
  if (total !== undefined && offset > total) offset = 0;
  await job.ensureSpace(total === undefined ? 0 : total - offset);
  // Without an announced size the server decides how much comes: stop at the cap. With one, stop at it.
  const limit = total ?? (await job.unsizedCap());
  let hash = await hashPrefix(file, offset);
  await writeFileAtomic(job.tmpDir, sidecarPath, JSON.stringify({ ...base, mode: "sequential" } satisfies Sidecar));
  const handle = await fs.open(file, offset > 0 ? "r+" : "w");
  try {
    await handle.truncate(offset);
    job.onProgress(offset, total);
    let failures = 0;
    for (;;) {
      const before = offset;
      try {
        const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
        const { response } = await fetchFollowing(
          job.probe.finalUrl,
          { headers, signal: job.signal },
          job.scope,
          job.what,
          job.fetch,
          job.hub,
        );
        if (response.status === 416) {
          await response.body?.cancel();
          if (total !== undefined && offset === total) break;
          throw new LlmosError("upstream_error", `${job.what}: the server rejected the byte range`);
        }
        const start = response.status === 206 ? contentRangeStart(response) : 0;
        if (start !== offset) {
          // The server ignored (or misread) our Range: start over from byte 0.
          job.log?.({ url: job.url, asked: offset, got: start }, "server did not resume; starting over");
          offset = 0;
          hash = createHash("sha256");
          await handle.truncate(0);
        }
        if (!response.body) throw new RetryableError(`${job.what}: empty response`);
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          if (offset + chunk.length > limit) throw new TooLarge(limit, total === undefined);
          await handle.write(chunk, 0, chunk.length, offset);
          hash.update(chunk);
          offset += chunk.length;
          job.onProgress(offset, total);
        }
        if (total === undefined || offset >= total) break;
        throw new RetryableError(`${job.what}: connection closed at byte ${offset} of ${total}`);
      } catch (error) {
        if (job.signal.aborted) throw abortError();
        if (error instanceof TooLarge) {
          await handle.truncate(0).catch(() => {});
          throw error;
        }
        const retryable = error instanceof RetryableError || isNetworkError(error);
        if (!retryable) throw error;
        failures = offset > before ? 1 : failures + 1;
        if (failures > job.tuning.retries)
          throw toFinal(new RetryableError(String((error as Error).message)), job.signal);
        job.log?.(
          { url: job.url, offset, attempt: failures, err: (error as Error).message },
          "download interrupted; retrying",
        );
        await sleep(
          backoffMs(failures, job.tuning.retryBaseMs, (error as RetryableError).retryAfterMs),
          job.signal,
        ).catch(() => {
          throw abortError();
        });
      }
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { digest: `sha256:${hash.digest("hex")}`, size: offset };
}

class RangesUnsupported extends Error {}

/** The server sent more than the announced size, or more than the cap without announcing one. */
class TooLarge extends Error {
  constructor(
    readonly limit: number,
    readonly unsized: boolean,
  ) {
    super(`more than ${limit} bytes`);
  }
}

async function downloadParallel(
  job: DownloadJob,
  file: string,
  sidecarPath: string,
  base: SidecarBase,
  resumed: Sidecar["ranges"],
): Promise<{ digest: string; size: number }> {
  const total = job.probe.size!;
  const n = job.tuning.connections;
  const partSize = Math.ceil(total / n);
  const fresh = Array.from({ length: Math.ceil(total / partSize) }, (_, i) => ({
    start: i * partSize,
    end: Math.min(total, (i + 1) * partSize) - 1,
    next: i * partSize,
  }));
  const valid =
    resumed !== undefined &&
    resumed.length > 0 &&
    resumed.every((r) => r.start <= r.next && r.next <= r.end + 1) &&
    resumed[resumed.length - 1]!.end === total - 1;
  const ranges = valid ? resumed.map((r) => ({ ...r })) : fresh;
  const done = (): number => ranges.reduce((sum, r) => sum + (r.next - r.start), 0);
  await job.ensureSpace(total - done());
  if (!valid) await fs.rm(file, { force: true });
  const handle = await fs.open(file, (await exists(file)) ? "r+" : "w+");
  let lastSave = 0;
  const save = async (force = false): Promise<void> => {
    if (!force && Date.now() - lastSave < 500) return;
    lastSave = Date.now();
    await writeFileAtomic(
      job.tmpDir,
      sidecarPath,
      JSON.stringify({ ...base, mode: "parallel", ranges } satisfies Sidecar),
    );
  };
  const inner = new AbortController();
  const onAbort = (): void => inner.abort(job.signal.reason);
  job.signal.addEventListener("abort", onAbort, { once: true });
  try {
    await handle.truncate(total);
    await save(true);
    job.onProgress(done(), total);
    const worker = async (r: (typeof ranges)[number]): Promise<void> => {
      let failures = 0;
      while (r.next <= r.end) {
        const before = r.next;
        try {
          const { response } = await fetchFollowing(
            job.probe.finalUrl,
            {
              headers: { range: `bytes=${r.next}-${r.end}` },
              signal: inner.signal,
            },
            job.scope,
            job.what,
            job.fetch,
            job.hub,
          );
          if (response.status !== 206 || contentRangeStart(response) !== r.next) {
            await response.body?.cancel();
            throw new RangesUnsupported();
          }
          if (!response.body) throw new RetryableError(`${job.what}: empty response`);
          for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
            const take = Math.min(chunk.length, r.end + 1 - r.next);
            await handle.write(chunk, 0, take, r.next);
            r.next += take;
            job.onProgress(done(), total);
            await save();
            if (r.next > r.end) break;
          }
          if (r.next <= r.end) throw new RetryableError(`${job.what}: connection closed at byte ${r.next}`);
        } catch (error) {
          if (job.signal.aborted) throw abortError();
          if (inner.signal.aborted) throw error;
          if (!(error instanceof RetryableError || isNetworkError(error))) throw error;
          failures = r.next > before ? 1 : failures + 1;
          if (failures > job.tuning.retries) throw toFinal(new RetryableError((error as Error).message), job.signal);
          job.log?.(
            { url: job.url, range: [r.start, r.end], next: r.next, attempt: failures },
            "range interrupted; retrying",
          );
          await sleep(backoffMs(failures, job.tuning.retryBaseMs), inner.signal);
        }
      }
    };
    const results = await Promise.allSettled(
      ranges.map(async (r) => {
        try {
          await worker(r);
        } catch (error) {
          inner.abort(error); // one failed range stops the others
          throw error;
        }
      }),
    );
    const failed = results.find((x): x is PromiseRejectedResult => x.status === "rejected");
    if (failed) {
      const reasons = results.filter((x): x is PromiseRejectedResult => x.status === "rejected").map((x) => x.reason);
      throw (
        reasons.find((e) => e instanceof RangesUnsupported) ??
        reasons.find((e) => e instanceof LlmosError) ??
        failed.reason
      );
    }
    await handle.sync();
  } finally {
    job.signal.removeEventListener("abort", onAbort);
    await save(true).catch(() => {});
    await handle.close();
  }
  // Ranges arrive out of order: hash the finished file front to back.
  return hashFile(file);
}

function contentRangeStart(response: Response): number {
  const m = /bytes\s+(\d+)-/i.exec(response.headers.get("content-range") ?? "");
  return m ? Number(m[1]) : -1;
}

function isNetworkError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof LlmosError) return false;
  // undici: "terminated" / "fetch failed" / socket errors surfaced while reading the body.
  const code = String((error as NodeJS.ErrnoException).code ?? "");
  if (/^(ENOSPC|EDQUOT|EACCES|EPERM|EROFS|EIO|EBADF|ENOENT)$/.test(code)) return false;
  return (
    error.name === "TypeError" ||
    code.startsWith("UND_ERR") ||
    /^E(CONN|PIPE|TIMEDOUT|HOSTUNREACH|NETUNREACH)/.test(code) ||
    /terminated|socket|other side closed/i.test(error.message)
  );
}
