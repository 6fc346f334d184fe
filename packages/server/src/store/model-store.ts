import fs from "node:fs/promises";
import path from "node:path";
import type { GgufLimits, GgufSummary } from "@llmos/gguf";
import { LlmosError } from "../errors.js";
import { BlobFiles, SourceReadError, type TempBlob } from "./blob-files.js";
import { emptyDefinition, type ModelDefinition } from "./definition.js";
import { normalizeDigest } from "./digest.js";
import { ensureFreeSpace, freeBytes } from "./disk-space.js";
import { GgufChecker } from "./gguf-checker.js";
import { ManifestFiles } from "./manifest-files.js";
import { MANIFEST_SCHEMA_VERSION, manifestBlobs, type BlobRef, type Manifest } from "./manifest.js";
import { BlobPins } from "./blob-pins.js";
import {
  collectGarbage,
  diskUsage,
  verifyBlobs,
  type DiskUsage,
  type GcReport,
  type VerifyReport,
} from "./maintenance.js";
import { StoreLocks } from "./mutex.js";
import { createModel, specFromModelfile, type CreateOptions, type CreateSpec } from "./create.js";
import type { Readable } from "node:stream";
import { Puller, type FetchBlobJob, type PullDefaults, type PullOptions, type PullProgress } from "./pull/pull.js";
import { progressStream } from "./progress-stream.js";
import { pushToRegistry, type PushOptions, type PushProgress, type PushResult } from "./registry/registry-push.js";
import { formatModelName, parseModelName, type ModelName } from "./names.js";
import type { ModelRecord } from "./record.js";
import type { CreateTarget, ModelLease, PullTarget, ModelHolder, RegisterSpec, StoreLogger } from "./registrar.js";

export type { ModelLease } from "./registrar.js";

/** Options of {@link ModelStore.open}. */
export interface ModelStoreOptions {
  /** Store folder (the daemon passes `<LLMOS_HOME>/models`). Created when missing. */
  root: string;
  logger?: StoreLogger;
  /** Bounds for GGUF headers, over `STORE_GGUF_LIMITS` (64 MiB headers, large arrays not built). */
  ggufLimits?: Partial<GgufLimits>;
  /**
   * Most bytes an upload or a download may write when no size is announced, and the largest announced upload.
   * Free disk space (minus `reserveBytes`) caps it further. Default 256 GiB.
   */
  maxBlobBytes?: number;
  /** Free bytes to keep on the disk beyond what a write needs. Default 64 MiB. */
  reserveBytes?: number;
  /**
   * Defaults for pulls: Hub endpoint (config `hfEndpoint`), token (config `hfToken`), download tuning; registry
   * settings (`oci`: default registry, credentials, URL policy) for registry pulls and pushes.
   */
  pull?: PullDefaults;
  /** How long a blob uploaded with `putBlob` is kept unreferenced (so a create can follow). Default 1 hour. */
  uploadGraceMs?: number;
  /** A partial download untouched this long is deleted by `gc()`. Default 7 days. */
  partialMaxAgeMs?: number;
}

/** What {@link ModelStore.remove} did. */
export interface RemoveResult {
  name: string;
  freedBytes: number;
}

/**
 * The model store: content-addressed GGUF blobs plus one JSON manifest per `name:tag`.
 *
 * Crash safety: blobs are hashed while written to `tmp/`, fsynced and renamed into `blobs/`; a manifest is written
 * (atomically) only after its blobs exist; so a crash never leaves a registered model with missing or partial
 * weights. Concurrency: see {@link StoreLocks}. One process owns a store folder at a time.
 */
export class ModelStore implements CreateTarget, PullTarget, ModelHolder {
  readonly root: string;
  readonly blobs: BlobFiles;
  readonly manifests: ManifestFiles;
  readonly dirs: { blobs: string; manifests: string; partial: string; tmp: string; quarantine: string };
  /** A partial download untouched this long is deleted by `gc()`. */
  readonly partialMaxAgeMs: number;
  readonly locks = new StoreLocks();
  readonly logger: StoreLogger | undefined;
  /** Checks GGUF files in a worker thread (bounded heap, off the event loop). */
  readonly gguf: GgufChecker;
  readonly reserveBytes: number;
  readonly maxBlobBytes: number;
  /** Bounds GGUF headers are read with (those of the GGUF checker), for code that reads a store file's header. */
  readonly ggufLimits: Partial<GgufLimits>;
  /** GGUF summaries by blob digest (blobs are immutable, so entries never go stale). */
  readonly summaries = new Map<string, GgufSummary>();
  /** Blobs gc must keep although unreferenced (leases, pulls in flight, recent uploads). */
  readonly pins: BlobPins;
  readonly #uploadGraceMs: number;
  #backgroundGc: Promise<unknown> | undefined;
  #disposed = false;
  readonly #puller: Puller;
  readonly #pullDefaults: PullDefaults | undefined;

  private constructor(options: ModelStoreOptions) {
    this.root = path.resolve(options.root);
    this.dirs = {
      blobs: path.join(this.root, "blobs"),
      manifests: path.join(this.root, "manifests"),
      partial: path.join(this.root, "partial"),
      tmp: path.join(this.root, "tmp"),
      quarantine: path.join(this.root, "quarantine"),
    };
    this.blobs = new BlobFiles(this.dirs.blobs, this.dirs.tmp, this.dirs.quarantine);
    this.manifests = new ManifestFiles(this.dirs.manifests, this.dirs.tmp);
    this.logger = options.logger;
    this.gguf = new GgufChecker(options.ggufLimits ? { limits: options.ggufLimits } : {});
    this.ggufLimits = this.gguf.limits;
    this.reserveBytes = options.reserveBytes ?? 64 * 1024 * 1024;
    this.maxBlobBytes = options.maxBlobBytes ?? 256 * 1024 ** 3;
    this.#uploadGraceMs = options.uploadGraceMs ?? 60 * 60 * 1000;
    this.partialMaxAgeMs = options.partialMaxAgeMs ?? 7 * 24 * 60 * 60 * 1000;
    // One URL policy for every pull source: registries use the store's pull policy unless given their own.
    const pull =
      options.pull?.policy && !options.pull.oci?.policy
        ? { ...options.pull, oci: { ...options.pull.oci, policy: options.pull.policy.check } }
        : options.pull;
    this.#puller = new Puller(this, pull);
    this.#pullDefaults = pull;
    // A removed model's blobs that a lease kept are collected when the last lease ends.
    this.pins = new BlobPins(() => {
      if (this.#disposed) return;
      this.#backgroundGc = this.gc().catch((err: unknown) => this.logger?.warn({ err }, "gc after release failed"));
    });
  }

  /** Opens (creating) a store folder and deletes temp files a crash left behind. */
  static async open(options: ModelStoreOptions): Promise<ModelStore> {
    const store = new ModelStore(options);
    for (const dir of Object.values(store.dirs)) await fs.mkdir(dir, { recursive: true });
    // tmp/ only ever holds files of operations in flight; at open none are.
    for (const entry of await fs.readdir(store.dirs.tmp)) {
      await fs.rm(path.join(store.dirs.tmp, entry), { recursive: true, force: true });
    }
    return store;
  }

  /** Path of a blob by digest (`sha256:<hex>`); it may not exist. */
  blobPath(digest: string): string {
    return this.blobs.path(digest);
  }

  /** True when a blob with this digest is stored. */
  async hasBlob(digest: string): Promise<boolean> {
    return this.blobs.has(normalizeDigest(digest));
  }

  /**
   * Pulls a model from the Hugging Face Hub (`hf.co/{owner}/{repo}[:{quant}]`, `hf.co/{owner}/{repo}/{file}`,
   * `hf://...`, `huggingface.co/...`) or an http(s) URL, and registers it (default name `hf.co/{owner}/{repo}:{tag}`
   * or the file's name). Resumes interrupted downloads; two pulls of one file share one download; the sha256 is
   * always computed and checked against the Hub's, and the file is validated as GGUF before it is registered.
   * @throws see `Puller.pull`.
   */
  async pull(reference: string, options: PullOptions = {}): Promise<ModelRecord> {
    this.#check();
    return this.#puller.pull(reference, options);
  }

  /**
   * {@link pull} as an async iterator of progress events (`for await (const e of store.pullStream(ref))`); the
   * generator's return value is the record. Leaving the loop early cancels the pull (the partial file stays).
   */
  pullStream(
    reference: string,
    options: Omit<PullOptions, "onProgress"> = {},
  ): AsyncGenerator<PullProgress, ModelRecord, undefined> {
    return progressStream<PullProgress, ModelRecord>(
      (onProgress, signal) => this.pull(reference, { ...options, onProgress, signal }),
      options.signal,
    );
  }

  /**
   * Pushes a model to an OCI registry (`{registry}/{repository}:{tag}`, `oci://...`; a name without a registry goes
   * to the default registry) in Ollama's layer layout. See `pushToRegistry`.
   */
  async push(name: string, reference: string, options: PushOptions = {}): Promise<PushResult> {
    this.#check();
    return pushToRegistry(this, this.#pullDefaults?.oci, name, reference, options);
  }

  /** {@link push} as an async iterator of progress events; the generator's return value is the result. */
  pushStream(
    name: string,
    reference: string,
    options: Omit<PushOptions, "onProgress"> = {},
  ): AsyncGenerator<PushProgress, PushResult, undefined> {
    return progressStream<PushProgress, PushResult>(
      (onProgress, signal) => this.push(name, reference, { ...options, onProgress, signal }),
      options.signal,
    );
  }

  /**
   * Joins (or starts) the shared download of the blob `digest` and resolves with it, kept from gc until `release()`
   * (call it once the manifest that references it is written). Pulls and cluster transfers of one blob share one
   * download; `start` runs only for the first caller (see `Puller.acquireBlob`).
   */
  acquireBlob(
    digest: string,
    signal: AbortSignal,
    listener: (event: PullProgress) => void,
    start: (signal: AbortSignal, emit: (event: PullProgress) => void) => Promise<{ ref: BlobRef; unpin: () => void }>,
  ): Promise<{ ref: BlobRef; release: () => void }> {
    this.#check();
    return this.#puller.acquireBlob(normalizeDigest(digest), signal, listener, start);
  }

  /**
   * Probes, downloads (resuming a partial file whose sidecar matches), verifies (size, sha256), validates as GGUF and
   * commits one blob, pinned until `unpin()`; see `Puller.fetchBlob`. A digest mismatch deletes the download.
   */
  fetchBlob(job: FetchBlobJob): Promise<{ ref: BlobRef; unpin: () => void }> {
    this.#check();
    return this.#puller.fetchBlob(job);
  }

  /** The manifest of `name` as stored. @throws `invalid_model_name`, `model_not_found`. */
  async manifest(name: string): Promise<Manifest> {
    this.#check();
    const { mtime: _mtime, ...manifest } = await this.#readManifest(parseModelName(name));
    return manifest;
  }

  /**
   * Keeps a blob from garbage collection until the returned function is called (idempotent). Pull pins a blob
   * between committing it and writing its manifest ({@link PullTarget}).
   */
  pinBlob(digest: string): () => void {
    return this.pins.pin(digest);
  }

  /**
   * Commits a complete, verified temp file (in `tmp/` or `partial/`) as a blob, pinned until `unpin()`
   * ({@link PullTarget}).
   */
  async commitTempBlob(temp: TempBlob): Promise<{ ref: BlobRef; unpin: () => void }> {
    this.#check();
    return this.locks.withNames([], async () => {
      await this.blobs.commit(temp);
      return { ref: { digest: temp.digest, size: temp.size }, unpin: this.pinBlob(temp.digest) };
    });
  }

  /**
   * Stores an uploaded blob (`POST /api/blobs/:digest`), verifying its content hashes to `digest`. The blob is kept
   * for `uploadGraceMs` even when nothing references it, so a create can use it.
   * @throws `invalid_request` on a digest mismatch (nothing is stored), `insufficient_storage`.
   */
  async putBlob(
    digest: string,
    stream: Readable,
    options: { signal?: AbortSignal; expectedSize?: number } = {},
  ): Promise<{ digest: string; size: number; existed: boolean }> {
    this.#check();
    const want = normalizeDigest(digest);
    if (options.expectedSize !== undefined) {
      if (options.expectedSize > this.maxBlobBytes) {
        throw new LlmosError(
          "payload_too_large",
          `blob ${want} is ${options.expectedSize} bytes, above the ${this.maxBlobBytes} bytes allowed (LLMOS_MAX_BLOB_SIZE)`,
          { limitBytes: this.maxBlobBytes },
        );
      }
      await ensureFreeSpace(this.dirs.tmp, options.expectedSize, this.reserveBytes, `blob ${want}`);
    }
    // Without a length the client decides how much comes: stop at the cap (the temp file is deleted).
    const maxBytes = options.expectedSize ?? (await this.unsizedCap(this.dirs.tmp));
    const temp = await this.blobs.writeTemp(stream, {
      expectedDigest: want,
      maxBytes,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return this.locks.withNames([], async () => {
      const existed = await this.blobs.has(want);
      await this.blobs.commit(temp);
      this.pins.holdUpload(want, Date.now() + this.#uploadGraceMs);
      return { digest: want, size: temp.size, existed };
    });
  }

  /** The most bytes a write of unknown size may take in `dir`: `maxBlobBytes`, or less when the disk has less free. */
  async unsizedCap(dir: string): Promise<number> {
    const free = await freeBytes(dir);
    return free === undefined ? this.maxBlobBytes : Math.max(0, Math.min(this.maxBlobBytes, free - this.reserveBytes));
  }

  /**
   * Creates (or replaces) `name` from Modelfile text. FROM is an existing model (its blobs are shared, its
   * definition inherited), a GGUF file path (imported) or a blob digest; ADAPTER is a GGUF path or blob digest.
   * @throws `invalid_request` (syntax, with line numbers; bad parameters), `model_not_found`, `not_found`,
   *   `invalid_model_file`, `invalid_model_name`.
   */
  async create(name: string, modelfile: string, options: CreateOptions = {}): Promise<ModelRecord> {
    this.#check();
    parseModelName(name);
    return createModel(this, name, specFromModelfile(modelfile), options);
  }

  /** Like {@link create} from structured fields (Ollama's `/api/create` body). */
  async createFromSpec(name: string, spec: CreateSpec, options: CreateOptions = {}): Promise<ModelRecord> {
    this.#check();
    parseModelName(name);
    if (typeof spec.from !== "string" || spec.from.length === 0) {
      throw new LlmosError("invalid_request", "`from` is required: a model name, a GGUF file path or a blob digest");
    }
    return createModel(this, name, spec, options);
  }

  /**
   * Imports a GGUF file under `name` (copying it into the store). The copy is hashed while written and validated
   * with the GGUF reader before anything is registered; the same content is stored once.
   * @throws `invalid_model_name`, `not_found` (no such file), `invalid_model_file`, `insufficient_storage`.
   */
  async importFile(
    file: string,
    name: string,
    options: { definition?: ModelDefinition; signal?: AbortSignal } = {},
  ): Promise<ModelRecord> {
    this.#check();
    const parsed = parseModelName(name);
    const temp = await this.ingestGgufFile(file, options.signal);
    return this.register(formatModelName(parsed), {
      model: temp,
      definition: options.definition ?? emptyDefinition(path.resolve(file)),
    });
  }

  /**
   * Copies a GGUF file into a validated temp blob (not yet committed): pass it to {@link register}. Deletes the
   * temp file on failure ({@link CreateTarget}).
   */
  async ingestGgufFile(file: string, signal?: AbortSignal, what = `file ${file}`): Promise<TempBlob> {
    let stat;
    try {
      stat = await fs.stat(file);
    } catch {
      throw new LlmosError("not_found", `${what}: file not found`, { path: file });
    }
    if (!stat.isFile()) throw new LlmosError("invalid_request", `${what} is not a regular file`, { path: file });
    await ensureFreeSpace(this.dirs.tmp, stat.size, this.reserveBytes, what);
    let temp: TempBlob;
    try {
      temp = await this.blobs.copyFileToTemp(file, signal ? { signal } : {});
    } catch (error) {
      // The file the client named cannot be read (a /proc file, a device error, no permission): its mistake, not
      // the store's. Errors of the temp file it is copied to keep their meaning (no space, ...).
      if (!(error instanceof SourceReadError)) throw error;
      if (error.code === "ENOENT") throw new LlmosError("not_found", `${what}: file not found`, { path: file });
      throw new LlmosError(
        "invalid_request",
        `${what} cannot be read (${error.code})`,
        { path: file },
        { cause: error },
      );
    }
    try {
      const { summary } = await this.gguf.check(temp.tmpPath, what);
      this.summaries.set(temp.digest, summary);
    } catch (error) {
      await fs.rm(temp.tmpPath, { force: true });
      throw error;
    }
    return temp;
  }

  /**
   * Registers `name` with the given blobs and definition: commits temp blobs, checks referenced blobs exist, then
   * writes the manifest. Holds the name's lock for the whole step. Import, create and pull end here.
   */
  async register(name: string, spec: RegisterSpec): Promise<ModelRecord> {
    this.#check();
    const parsed = parseModelName(name);
    const adapterCount = spec.adapters?.length ?? 0;
    const sources = [spec.model, ...(spec.adapters ?? []), ...(spec.projectors ?? [])];
    try {
      return await this.locks.withNames([formatModelName(parsed)], async () => {
        const refs: BlobRef[] = [];
        for (const source of sources) {
          if ("tmpPath" in source) {
            await this.blobs.commit(source);
            refs.push({ digest: source.digest, size: source.size });
          } else {
            const digest = normalizeDigest(source.digest);
            const size = await this.blobs.size(digest);
            if (size === undefined) throw new LlmosError("not_found", `blob ${digest} is not in the store`);
            refs.push({ digest, size });
          }
        }
        const manifest: Manifest = {
          schemaVersion: MANIFEST_SCHEMA_VERSION,
          model: refs[0]!,
          adapters: refs.slice(1, 1 + adapterCount),
          ...(refs.length > 1 + adapterCount ? { projectors: refs.slice(1 + adapterCount) } : {}),
          definition: spec.definition,
          ...(spec.origin ? { origin: spec.origin } : {}),
          createdAt: new Date().toISOString(),
          ...(spec.quantization ? { quantization: spec.quantization } : {}),
        };
        await this.manifests.write(parsed, manifest);
        this.logger?.info({ model: formatModelName(parsed), digest: manifest.model.digest }, "model registered");
        return this.#record(parsed, { ...manifest, mtime: new Date(manifest.createdAt) });
      });
    } finally {
      // Temp blobs not committed (an error before commit) must not linger in tmp/.
      for (const source of sources) if ("tmpPath" in source) await fs.rm(source.tmpPath, { force: true });
    }
  }

  /** All models, sorted by name. Models whose blobs are missing (e.g. quarantined) are skipped with a warning. */
  async list(): Promise<ModelRecord[]> {
    this.#check();
    const names = await this.manifests.list((file) => this.logger?.warn({ file }, "ignoring unexpected manifest"));
    const records: ModelRecord[] = [];
    for (const name of names) {
      try {
        const manifest = await this.manifests.read(name);
        if (manifest) records.push(await this.#record(name, manifest));
      } catch (error) {
        this.logger?.warn({ model: formatModelName(name), err: error }, "skipping damaged model");
      }
    }
    return records;
  }

  /** True when `name` is registered. */
  async has(name: string): Promise<boolean> {
    return (await this.manifests.read(parseModelName(name))) !== undefined;
  }

  /**
   * One model. `stories` and `stories:latest` are the same.
   * @throws `invalid_model_name`; `model_not_found` naming the model.
   */
  async get(name: string): Promise<ModelRecord> {
    this.#check();
    const parsed = parseModelName(name);
    return this.#record(parsed, await this.#readManifest(parsed));
  }

  /** The GGUF metadata of a model for display (large arrays elided). */
  async metadata(name: string): Promise<Record<string, unknown>> {
    const record = await this.get(name);
    return (await this.gguf.check(record.modelPath, `model ${record.name}`, { display: true })).metadata ?? {};
  }

  /**
   * Unregisters a model and deletes the blobs no other model (or live lease) uses.
   * @throws `model_not_found`.
   */
  async remove(name: string): Promise<RemoveResult> {
    this.#check();
    const parsed = parseModelName(name);
    const key = formatModelName(parsed);
    await this.locks.withNames([key], async () => {
      if (!(await this.manifests.remove(parsed))) throw notFound(key);
    });
    this.logger?.info({ model: key }, "model removed");
    const report = await this.gc();
    return { name: key, freedBytes: report.freedBytes };
  }

  /**
   * Registers `dst` as a copy of `src` (same blobs, same definition; no bytes copied). Overwrites `dst`.
   * @throws `model_not_found` for `src`, `invalid_model_name`.
   */
  async copy(src: string, dst: string): Promise<ModelRecord> {
    this.#check();
    const from = parseModelName(src);
    const to = parseModelName(dst);
    return this.locks.withNames([formatModelName(from), formatModelName(to)], async () => {
      const manifest = await this.#readManifest(from);
      const { mtime: _mtime, ...rest } = manifest;
      const copy: Manifest = { ...rest, createdAt: new Date().toISOString() };
      await this.manifests.write(to, copy);
      return this.#record(to, { ...copy, mtime: new Date(copy.createdAt) });
    });
  }

  /**
   * Holds a model for use (loading it into a runner): until `release()`, its blobs stay on disk even if the model
   * is removed meanwhile.
   * @throws `model_not_found`.
   */
  async acquire(name: string): Promise<ModelLease> {
    this.#check();
    const parsed = parseModelName(name);
    return this.locks.withNames([formatModelName(parsed)], async () => {
      const record = await this.#record(parsed, await this.#readManifest(parsed));
      const unpins = [
        record.digest,
        ...record.adapters.map((a) => a.digest),
        ...record.projectors.map((p) => p.digest),
      ].map((d) => this.pins.pin(d));
      let released = false;
      return {
        record,
        modelPath: record.modelPath,
        adapterPaths: record.adapters.map((a) => a.path),
        release: () => {
          if (released) return;
          released = true;
          for (const unpin of unpins) unpin();
        },
      };
    });
  }

  /** Number of live leases on a blob (for diagnostics and tests). */
  leaseCount(digest: string): number {
    return this.pins.count(digest);
  }

  /** Deletes blobs that no manifest references and no lease holds. Runs alone (no other store operation meanwhile). */
  async gc(): Promise<GcReport> {
    this.#check();
    return collectGarbage(this);
  }

  /**
   * Re-hashes every blob. Blobs whose content does not match their digest are moved to `quarantine/` and reported
   * with the models that referenced them (those models then fail to load until pulled or imported again).
   */
  async verify(): Promise<VerifyReport> {
    this.#check();
    return verifyBlobs(this);
  }

  /** Disk use per model and in total. */
  async du(): Promise<DiskUsage> {
    this.#check();
    return diskUsage(this);
  }

  /** Cancels pulls in flight (their partial files stay), waits for background work and refuses further calls. Idempotent. */
  async dispose(): Promise<void> {
    this.#disposed = true;
    await this.#puller.dispose();
    await this.#backgroundGc;
    await this.gguf.dispose();
  }

  async #readManifest(name: ModelName): Promise<Manifest & { mtime: Date }> {
    const manifest = await this.manifests.read(name);
    if (!manifest) throw notFound(formatModelName(name));
    return manifest;
  }

  async #record(name: ModelName, manifest: Manifest & { mtime: Date }): Promise<ModelRecord> {
    const key = formatModelName(name);
    const modelPath = this.blobs.path(manifest.model.digest);
    let summary = this.summaries.get(manifest.model.digest);
    if (!summary) {
      try {
        await fs.access(modelPath);
      } catch {
        throw new LlmosError(
          "model_not_found",
          `model "${key}" is damaged: its weights blob ${manifest.model.digest} is missing (quarantined or deleted); ` +
            "pull or import it again",
          { model: key, digest: manifest.model.digest },
        );
      }
      summary = (await this.gguf.check(modelPath, `model ${key}`)).summary;
      this.summaries.set(manifest.model.digest, summary);
    }
    return {
      name: key,
      digest: manifest.model.digest,
      size: manifestBlobs(manifest).reduce((sum, b) => sum + b.size, 0),
      modifiedAt: manifest.createdAt,
      modelPath,
      adapters: manifest.adapters.map((a) => ({ ...a, path: this.blobs.path(a.digest) })),
      projectors: (manifest.projectors ?? []).map((p) => ({ ...p, path: this.blobs.path(p.digest) })),
      ...(manifest.origin ? { origin: manifest.origin } : {}),
      summary,
      definition: manifest.definition,
      ...(manifest.quantization ? { quantization: manifest.quantization } : {}),
    };
  }

  #check(): void {
    if (this.#disposed) throw new LlmosError("unavailable", "the model store is closed");
  }
}

function notFound(name: string): LlmosError {
  return new LlmosError("model_not_found", `model "${name}" not found`, { model: name });
}
