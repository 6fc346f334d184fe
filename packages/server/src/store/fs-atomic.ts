import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";

/** A unique temp file name inside `tmpDir` (which must be on the same file system as the target). */
export function tempPath(tmpDir: string, hint = "tmp"): string {
  return path.join(tmpDir, `${hint.replace(/[^A-Za-z0-9._-]/g, "_")}-${process.pid}-${randomBytes(6).toString("hex")}`);
}

/** fsyncs a folder so that a rename or unlink inside it survives a crash. Best effort where folders can't be opened. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, "r");
    await handle.sync();
  } catch {
    // Some platforms/file systems refuse fsync on folders; the rename is still atomic there.
  } finally {
    await handle?.close();
  }
}

/** fsyncs an existing file. */
export async function fsyncFile(file: string): Promise<void> {
  const handle = await fs.open(file, "r+");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `data` to `target` atomically: a temp file in `tmpDir`, fsync, rename over the target, fsync the folder.
 * A crash leaves either the old file or the new one, never half of one.
 */
export async function writeFileAtomic(tmpDir: string, target: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPath(tmpDir, path.basename(target));
  const handle = await fs.open(tmp, "wx", 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await fs.rm(tmp, { force: true });
    throw error;
  }
  await handle.close();
  await commitFile(tmp, target);
}

/** Moves a complete, fsynced temp file into place (creating the target's folder) and fsyncs the folder. */
export async function commitFile(tmp: string, target: string): Promise<void> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  try {
    await fs.rename(tmp, target);
  } catch (error) {
    await fs.rm(tmp, { force: true });
    throw error;
  }
  await fsyncDir(path.dirname(target));
}

/** True when `p` exists. */
export async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}
