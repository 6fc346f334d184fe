import fs from "node:fs/promises";
import path from "node:path";
import { LlmosError } from "../errors.js";
import { writeFileAtomic, fsyncDir } from "./fs-atomic.js";
import { parseManifest, serializeManifest, type Manifest } from "./manifest.js";
import { formatModelName, parseModelName, type ModelName } from "./names.js";

/** A parsed manifest and the file identity it was read from. */
interface CachedManifest {
  manifest: Manifest & { mtime: Date };
  ino: number;
  size: number;
  mtimeMs: number;
}

/**
 * The `manifests/<name>/<tag>.json` tree. Names passed in are already parsed (see `parseModelName`).
 * Every inference request reads its model's manifest: parsed manifests are kept in memory and served after one
 * `stat` shows the file unchanged (same inode, size and mtime), so a manifest changed by another process is
 * still read again.
 */
export class ManifestFiles {
  readonly #cache = new Map<string, CachedManifest>();

  constructor(
    readonly dir: string,
    readonly tmpDir: string,
  ) {}

  /** File of a manifest. */
  path(name: ModelName): string {
    return path.join(this.dir, ...name.name.split("/"), `${name.tag}.json`);
  }

  /** Reads a manifest, or undefined when the model does not exist. */
  async read(name: ModelName): Promise<(Manifest & { mtime: Date }) | undefined> {
    const file = this.path(name);
    try {
      const before = await fs.stat(file);
      const cached = this.#cache.get(file);
      if (cached && cached.ino === before.ino && cached.size === before.size && cached.mtimeMs === before.mtimeMs)
        return cached.manifest;
      const text = await fs.readFile(file, "utf8");
      const manifest = { ...parseManifest(text, file), mtime: before.mtime };
      // Cache only when the file did not change while it was read.
      const after = await fs.stat(file);
      if (after.ino === before.ino && after.size === before.size && after.mtimeMs === before.mtimeMs) {
        this.#cache.set(file, { manifest, ino: before.ino, size: before.size, mtimeMs: before.mtimeMs });
      } else this.#cache.delete(file);
      return manifest;
    } catch (error) {
      this.#cache.delete(file);
      if ((error as NodeJS.ErrnoException).code === "ENOENT" || (error as NodeJS.ErrnoException).code === "ENOTDIR") {
        return undefined;
      }
      throw error;
    }
  }

  /** Writes a manifest atomically. */
  async write(name: ModelName, manifest: Manifest): Promise<void> {
    const file = this.path(name);
    this.#cache.delete(file);
    await fs.mkdir(path.dirname(file), { recursive: true }).catch((error: NodeJS.ErrnoException) => {
      throw new LlmosError("conflict", `cannot create ${formatModelName(name)}: ${error.message}`);
    });
    await writeFileAtomic(this.tmpDir, file, serializeManifest(manifest));
  }

  /** Deletes a manifest and the folders it leaves empty. Returns false when there was none. */
  async remove(name: ModelName): Promise<boolean> {
    const file = this.path(name);
    this.#cache.delete(file);
    try {
      await fs.unlink(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw error;
    }
    let dir = path.dirname(file);
    await fsyncDir(dir);
    while (dir !== this.dir && dir.startsWith(this.dir)) {
      try {
        await fs.rmdir(dir);
      } catch {
        break; // not empty
      }
      dir = path.dirname(dir);
    }
    return true;
  }

  /** Every stored name (parsed), found by walking the tree; entries that are not valid names are skipped. */
  async list(onSkip?: (file: string) => void): Promise<ModelName[]> {
    const out: ModelName[] = [];
    const walk = async (dir: string, prefix: string[]): Promise<void> => {
      const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        if (entry.isDirectory()) {
          await walk(path.join(dir, entry.name), [...prefix, entry.name]);
        } else if (entry.isFile() && entry.name.endsWith(".json") && prefix.length > 0) {
          try {
            out.push(parseModelName(`${prefix.join("/")}:${entry.name.slice(0, -5)}`));
          } catch {
            onSkip?.(path.join(dir, entry.name));
          }
        }
      }
    };
    await walk(this.dir, []);
    return out.sort((a, b) => formatModelName(a).localeCompare(formatModelName(b)));
  }
}
