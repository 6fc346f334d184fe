import fs from "node:fs/promises";
import { LlmosError } from "../errors.js";

/** Bytes free for an unprivileged user on the file system holding `dir`, or undefined when unknown. */
export async function freeBytes(dir: string): Promise<number | undefined> {
  try {
    const s = await fs.statfs(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

/**
 * Throws `insufficient_storage` when `dir`'s file system has fewer than `needed + reserve` bytes free.
 * Unknown free space (statfs unsupported) passes: the write itself will fail with ENOSPC.
 */
export async function ensureFreeSpace(dir: string, needed: number, reserve: number, what: string): Promise<void> {
  const free = await freeBytes(dir);
  if (free === undefined || free >= needed + reserve) return;
  throw new LlmosError(
    "insufficient_storage",
    `not enough disk space for ${what}: needs ${needed} bytes (+${reserve} reserve), ${free} free in ${dir}`,
    { neededBytes: needed, reserveBytes: reserve, freeBytes: free },
  );
}
