import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { Transform, type Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { LlmosError } from "../errors.js";
import { digestHex, digestOf, hashFile, normalizeDigest } from "./digest.js";
import { commitFile, exists, fsyncDir, fsyncFile, tempPath } from "./fs-atomic.js";

/** Options of {@link BlobFiles.writeTemp}. */
export interface WriteTempOptions {
  /** Digest the content must have; a mismatch deletes the temp file and throws `invalid_request`. */
  expectedDigest?: string;
  signal?: AbortSignal;
  /** Called with bytes written so far. */
  onBytes?: (bytes: number) => void;
  /** Most bytes the source may deliver: past it the write stops, the temp file is deleted, `payload_too_large`. */
  maxBytes?: number;
}

/** The file to copy could not be opened or read (`code` is the system's, e.g. EIO, EACCES, ENOENT). */
export class SourceReadError extends Error {
  override readonly name = "SourceReadError";
  readonly code: string;

  constructor(
    readonly path: string,
    cause: NodeJS.ErrnoException,
  ) {
    super(`cannot read ${path}: ${cause.message}`, { cause });
    this.code = cause.code ?? "EIO";
  }
}

/** A hashed, fsynced temp file ready to be committed as a blob. */
export interface TempBlob {
  tmpPath: string;
  digest: string;
  size: number;
}

/**
 * The content-addressed `blobs/` folder: `sha256-<hex>` files that are complete and verified by construction
 * (written to `tmp/`, hashed while written, fsynced, then renamed into place).
 */
export class BlobFiles {
  constructor(
    readonly dir: string,
    readonly tmpDir: string,
    readonly quarantineDir: string,
  ) {}

  /** Path of a blob (whether or not it exists). */
  path(digest: string): string {
    return path.join(this.dir, `sha256-${digestHex(digest)}`);
  }

  /** True when the blob exists. */
  has(digest: string): Promise<boolean> {
    return exists(this.path(digest));
  }

  /** Size of an existing blob, or undefined. */
  async size(digest: string): Promise<number | undefined> {
    try {
      return (await fs.stat(this.path(digest))).size;
    } catch {
      return undefined;
    }
  }

  /** Digests of all blob files (other files in the folder are ignored). */
  async list(): Promise<string[]> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    return names.filter((n) => /^sha256-[0-9a-f]{64}$/.test(n)).map((n) => `sha256:${n.slice(7)}`);
  }

  /** Streams `source` into a temp file while hashing it; fsyncs it. The caller commits or deletes it. */
  async writeTemp(source: Readable, options: WriteTempOptions = {}): Promise<TempBlob> {
    const tmpPath = tempPath(this.tmpDir, "blob");
    const hash = createHash("sha256");
    let size = 0;
    const max = options.maxBytes ?? Infinity;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        if (size + chunk.length > max) {
          callback(
            new LlmosError(
              "payload_too_large",
              `the content is larger than ${max} bytes (LLMOS_MAX_BLOB_SIZE or free disk space); nothing was stored`,
              { limitBytes: max },
            ),
          );
          return;
        }
        hash.update(chunk);
        size += chunk.length;
        options.onBytes?.(size);
        callback(null, chunk);
      },
    });
    try {
      await pipeline(source, meter, createWriteStream(tmpPath, { flags: "wx", mode: 0o644 }), {
        signal: options.signal,
      });
      await fsyncFile(tmpPath);
    } catch (error) {
      await fs.rm(tmpPath, { force: true });
      throw error;
    }
    const digest = digestOf(hash);
    if (options.expectedDigest !== undefined && normalizeDigest(options.expectedDigest) !== digest) {
      await fs.rm(tmpPath, { force: true });
      throw new LlmosError(
        "invalid_request",
        `digest mismatch: expected ${normalizeDigest(options.expectedDigest)}, the content hashes to ${digest}`,
        { expected: options.expectedDigest, actual: digest },
      );
    }
    return { tmpPath, digest, size };
  }

  /**
   * Copies a file into a temp file while hashing it.
   * @throws {@link SourceReadError} when `file` cannot be read (as opposed to the temp file not being written).
   */
  async copyFileToTemp(file: string, options: WriteTempOptions = {}): Promise<TempBlob> {
    const source = createReadStream(file, { highWaterMark: 1 << 20 });
    let readError: NodeJS.ErrnoException | undefined;
    source.once("error", (error) => (readError = error));
    try {
      return await this.writeTemp(source, options);
    } catch (error) {
      if (readError !== undefined && error === readError) throw new SourceReadError(file, readError);
      throw error;
    }
  }

  /**
   * Moves a complete temp file into `blobs/` under its digest. If the blob already exists (same content), the temp
   * file is deleted instead. Callers hold the store lock shared so garbage collection can't interleave.
   */
  async commit(temp: TempBlob): Promise<string> {
    const target = this.path(temp.digest);
    if (await exists(target)) {
      await fs.rm(temp.tmpPath, { force: true });
    } else {
      await commitFile(temp.tmpPath, target);
    }
    return target;
  }

  /** Re-hashes a blob; true when its content matches its name. */
  async check(digest: string): Promise<boolean> {
    const { digest: actual } = await hashFile(this.path(digest));
    return actual === normalizeDigest(digest);
  }

  /** Moves a blob to `quarantine/` (kept for inspection, no longer served). Returns the new path. */
  async quarantine(digest: string): Promise<string> {
    await fs.mkdir(this.quarantineDir, { recursive: true });
    const target = path.join(this.quarantineDir, `sha256-${digestHex(digest)}-${Date.now()}`);
    await fs.rename(this.path(digest), target);
    await fsyncDir(this.dir);
    return target;
  }

  /** Deletes a blob; returns the bytes freed (0 when it was already gone). */
  async remove(digest: string): Promise<number> {
    const size = await this.size(digest);
    if (size === undefined) return 0;
    await fs.rm(this.path(digest), { force: true });
    return size;
  }
}
