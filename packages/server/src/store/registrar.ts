/**
 * The narrow views of the store that creating, pulling and pushing a model work through. `ModelStore` implements
 * them; `create.ts`, `pull/` and `registry/` import these interfaces, never `ModelStore`, so the store has no import
 * cycle and what each operation may touch is written down here.
 */
import type { GgufLimits } from "@llmos/gguf";
import type { ModelOrigin } from "@llmos/protocol";
import type { TempBlob } from "./blob-files.js";
import type { GgufInspection } from "./gguf-check.js";
import type { ModelDefinition } from "./definition.js";
import type { BlobRef, QuantizationRecord } from "./manifest.js";
import type { ModelRecord } from "./record.js";

/** The subset of a pino logger the store uses. */
export interface StoreLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** A blob for {@link ModelRegistrar.register}: a temp file to commit, or an existing blob. */
export type BlobSource = TempBlob | BlobRef;

/** What a new model is registered with: its weights, adapters and definition. */
export interface RegisterSpec {
  model: BlobSource;
  adapters?: BlobSource[];
  /** Multimodal projectors (registry pulls keep them with the model). */
  projectors?: BlobSource[];
  definition: ModelDefinition;
  /** Where the model came from (a registry pull). */
  origin?: ModelOrigin;
  /** How the weights were quantized from another model (`llmos quantize`, Ollama's create `quantize`). */
  quantization?: QuantizationRecord;
}

/** Checks GGUF files off the event loop (the store's `GgufChecker`). */
export interface GgufCheck {
  /** @throws `invalid_model_file` naming `what`, `not_found`. */
  check(file: string, what: string, opts?: { display?: boolean }): Promise<GgufInspection>;
}

/** Registers models from blobs: the part of the store both create and pull use. */
export interface ModelRegistrar {
  /** Bounds for GGUF headers checked before anything is registered. */
  readonly ggufLimits: Partial<GgufLimits> | undefined;
  /** Validates GGUF files (in a worker thread) before anything is registered. */
  readonly gguf: GgufCheck;
  readonly blobs: { size(digest: string): Promise<number | undefined> };
  /** A registered model. @throws `model_not_found`. */
  get(name: string): Promise<ModelRecord>;
  /**
   * Commits temp blobs, checks referenced blobs exist, then writes the manifest of `name` (under the name's lock).
   * Temp files not committed are deleted.
   */
  register(name: string, spec: RegisterSpec): Promise<ModelRecord>;
}

/** What `createModel` needs: existing models to build on, blobs by digest, GGUF files to import. */
export interface CreateTarget extends ModelRegistrar {
  blobPath(digest: string): string;
  /** Copies a GGUF file into a validated temp blob (not yet committed); deletes the temp file on failure. */
  ingestGgufFile(file: string, signal?: AbortSignal, what?: string): Promise<TempBlob>;
}

/** What a pull needs: folders for downloads, disk reserve, and blobs pinned between commit and manifest. */
export interface PullTarget extends ModelRegistrar {
  readonly dirs: { readonly partial: string; readonly tmp: string };
  /** Free bytes to keep on the disk beyond what a write needs. */
  readonly reserveBytes: number;
  /** The most bytes a download of unknown size may write in `dir` (the blob limit, or less free space). */
  unsizedCap(dir: string): Promise<number>;
  readonly logger: StoreLogger | undefined;
  /** Keeps a blob from garbage collection until the returned function is called (idempotent). */
  pinBlob(digest: string): () => void;
  /** Commits a complete, verified temp file as a blob, pinned until `unpin()`. */
  commitTempBlob(temp: TempBlob): Promise<{ ref: BlobRef; unpin: () => void }>;
}

/** A model held for use: its blobs are not garbage-collected until `release()`. */
export interface ModelLease {
  readonly record: ModelRecord;
  readonly modelPath: string;
  readonly adapterPaths: readonly string[];
  /** Lets the blobs go. Idempotent. */
  release(): void;
}

/** What a push needs: the model held (its blobs kept) while its layers are sent. */
export interface ModelHolder {
  /** @throws `model_not_found`. */
  acquire(name: string): Promise<ModelLease>;
}
