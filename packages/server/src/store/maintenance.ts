import fs from "node:fs/promises";
import path from "node:path";
import type { GgufSummary } from "@llmos/gguf";
import type { BlobFiles } from "./blob-files.js";
import type { BlobPins } from "./blob-pins.js";
import type { ManifestFiles } from "./manifest-files.js";
import { manifestBlobs } from "./manifest.js";
import type { StoreLocks } from "./mutex.js";
import { formatModelName } from "./names.js";
import type { DiskUsage, VerifyReport } from "@llmos/protocol";

/** What {@link ModelStore.gc} removed. */
export interface GcReport {
  removed: string[];
  freedBytes: number;
  /** Unreferenced blobs kept because a lease or pull holds them, or an upload is within its grace time. */
  kept: string[];
  /** Downloads abandoned in `partial/` (untouched for `partialMaxAgeMs`) that were deleted, by key. */
  partialsRemoved: string[];
}

/** What {@link ModelStore.verify} found, and the store's disk use (wire types). */
export type { DiskUsage, VerifyReport };

/** The parts of a store that maintenance works on. */
export interface StoreParts {
  blobs: BlobFiles;
  manifests: ManifestFiles;
  locks: StoreLocks;
  pins: BlobPins;
  summaries: Map<string, GgufSummary>;
  dirs: { partial: string };
  /** A partial download untouched this long is abandoned: gc deletes it. */
  partialMaxAgeMs: number;
  logger: { warn(obj: object, msg?: string): void; info(obj: object, msg?: string): void } | undefined;
}

/** Reads every manifest: digest -> names that use it; `damaged` counts manifests that could not be read. */
export async function scanManifests(s: StoreParts): Promise<{ users: Map<string, string[]>; damaged: number }> {
  const users = new Map<string, string[]>();
  let damaged = 0;
  for (const name of await s.manifests.list()) {
    let manifest;
    try {
      manifest = await s.manifests.read(name);
    } catch (err) {
      damaged++;
      s.logger?.warn({ model: formatModelName(name), err }, "damaged manifest");
      continue;
    }
    if (!manifest) continue;
    for (const blob of manifestBlobs(manifest)) {
      const list = users.get(blob.digest) ?? [];
      list.push(formatModelName(name));
      users.set(blob.digest, list);
    }
  }
  return { users, damaged };
}

/** Deletes blobs nothing references or holds. Runs under the exclusive store lock. */
export function collectGarbage(s: StoreParts): Promise<GcReport> {
  return s.locks.exclusive(async () => {
    const { users, damaged } = await scanManifests(s);
    const report: GcReport = { removed: [], freedBytes: 0, kept: [], partialsRemoved: [] };
    // A manifest that can't be read may reference any blob: collect nothing rather than guess.
    if (damaged > 0) {
      s.logger?.warn({ damaged }, "gc skipped: damaged manifests in the store");
      return report;
    }
    for (const digest of await s.blobs.list()) {
      if (users.has(digest)) {
        s.pins.dropUpload(digest);
        continue;
      }
      if (s.pins.keeps(digest)) {
        report.kept.push(digest);
        continue;
      }
      report.freedBytes += await s.blobs.remove(digest);
      report.removed.push(digest);
      s.summaries.delete(digest);
    }
    const stale = await removeStalePartials(s.dirs.partial, s.partialMaxAgeMs, Date.now());
    report.partialsRemoved = stale.keys;
    report.freedBytes += stale.bytes;
    if (report.removed.length > 0 || stale.keys.length > 0) s.logger?.info({ ...report }, "blobs garbage-collected");
    return report;
  });
}

/**
 * Deletes downloads in `partial/` (`<key>.partial` and its `<key>.json` sidecar) that nothing wrote for `maxAgeMs`:
 * a pull that was cancelled or failed and never retried. A pull in progress writes its file all the time, and
 * one resumed later simply starts over.
 */
export async function removeStalePartials(
  dir: string,
  maxAgeMs: number,
  now: number,
): Promise<{ keys: string[]; bytes: number }> {
  const newest = new Map<string, { mtimeMs: number; bytes: number; files: string[] }>();
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    const key = name.replace(/\.(partial|json)$/, "");
    if (key === name) continue;
    const st = await fs.stat(path.join(dir, name)).catch(() => undefined);
    if (!st?.isFile()) continue;
    const g = newest.get(key) ?? { mtimeMs: 0, bytes: 0, files: [] };
    g.mtimeMs = Math.max(g.mtimeMs, st.mtimeMs);
    g.bytes += st.size;
    g.files.push(name);
    newest.set(key, g);
  }
  const out = { keys: [] as string[], bytes: 0 };
  for (const [key, g] of newest) {
    if (now - g.mtimeMs < maxAgeMs) continue;
    for (const f of g.files) await fs.rm(path.join(dir, f), { force: true });
    out.keys.push(key);
    out.bytes += g.bytes;
  }
  return out;
}

/** Re-hashes every blob; moves corrupt ones to quarantine. */
export async function verifyBlobs(s: StoreParts): Promise<VerifyReport> {
  const digests = await s.blobs.list();
  const bad: string[] = [];
  for (const digest of digests) {
    // Blobs are immutable, so hashing needs no lock; one removed meanwhile by gc is simply skipped.
    try {
      if (!(await s.blobs.check(digest))) bad.push(digest);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
  const report: VerifyReport = { checked: digests.length, corrupt: [] };
  if (bad.length === 0) return report;
  return s.locks.exclusive(async () => {
    const { users } = await scanManifests(s);
    for (const digest of bad) {
      const quarantinedTo = await s.blobs.quarantine(digest);
      s.summaries.delete(digest);
      report.corrupt.push({ digest, quarantinedTo, models: users.get(digest) ?? [] });
      s.logger?.warn({ digest, quarantinedTo, models: users.get(digest) }, "corrupt blob quarantined");
    }
    return report;
  });
}

/** Disk use per model and in total. */
export async function diskUsage(s: StoreParts): Promise<DiskUsage> {
  const { users } = await scanManifests(s);
  const sizes = new Map<string, number>();
  let blobBytes = 0;
  for (const digest of await s.blobs.list()) {
    const size = (await s.blobs.size(digest)) ?? 0;
    sizes.set(digest, size);
    blobBytes += size;
  }
  let partialBytes = 0;
  for (const entry of await fs.readdir(s.dirs.partial).catch(() => [] as string[])) {
    partialBytes += (await fs.stat(path.join(s.dirs.partial, entry)).catch(() => ({ size: 0 }))).size;
  }
  const perModel = new Map<string, { bytes: number; uniqueBytes: number; sharedBytes: number }>();
  let sharedBytes = 0;
  let unreferencedBytes = 0;
  for (const [digest, size] of sizes) {
    const models = users.get(digest) ?? [];
    if (models.length === 0) unreferencedBytes += size;
    if (models.length > 1) sharedBytes += size;
    for (const model of models) {
      const entry = perModel.get(model) ?? { bytes: 0, uniqueBytes: 0, sharedBytes: 0 };
      entry.bytes += size;
      if (models.length === 1) entry.uniqueBytes += size;
      else entry.sharedBytes += size;
      perModel.set(model, entry);
    }
  }
  return {
    totalBytes: blobBytes + partialBytes,
    blobBytes,
    partialBytes,
    sharedBytes,
    unreferencedBytes,
    models: [...perModel].map(([name, u]) => ({ name, ...u })).sort((a, b) => a.name.localeCompare(b.name)),
  };
}
