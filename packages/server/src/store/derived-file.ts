/**
 * Files the daemon makes from models (a quantized model, an importance matrix): written by a worker process to a
 * temp path in `tmp/` (emptied when the store opens, so a crash leaves nothing), then hashed, fsynced and checked
 * here before they are committed as blobs like any import.
 */
import fs from "node:fs/promises";
import { readGguf } from "@llmos/gguf";
import { LlmosError } from "../errors.js";
import type { TempBlob } from "./blob-files.js";
import { hashFile } from "./digest.js";
import { fsyncFile, tempPath } from "./fs-atomic.js";
import type { ModelStore } from "./model-store.js";

/** A fresh path in the store's `tmp/` for a worker to write (nothing is created). */
export function derivedFilePath(store: ModelStore, hint: string): string {
  return `${tempPath(store.dirs.tmp, hint)}.gguf`;
}

/**
 * Turns a complete file a worker wrote into a temp blob for `register`: fsync, sha256, GGUF validation (a model,
 * or with `kind: "imatrix"` an importance matrix). Deletes the file when it does not validate.
 * @throws LlmosError `invalid_model_file` naming `what`.
 */
export async function adoptDerivedFile(
  store: ModelStore,
  file: string,
  what: string,
  kind: "model" | "imatrix" = "model",
): Promise<TempBlob> {
  try {
    await fsyncFile(file);
    if (kind === "model") await store.gguf.check(file, what);
    else await readGguf(file, store.ggufLimits);
    const { digest, size } = await hashFile(file);
    return { tmpPath: file, digest, size };
  } catch (error) {
    await fs.rm(file, { force: true });
    if (error instanceof LlmosError) throw error;
    throw new LlmosError("invalid_model_file", `${what} is not a valid GGUF file: ${(error as Error).message}`);
  }
}

/**
 * Commits an adopted temp file as a blob kept for `graceMs` although no model references it (an importance
 * matrix a later quantize names by digest). Returns its digest and size.
 */
export async function commitLooseBlob(
  store: ModelStore,
  temp: TempBlob,
  graceMs: number,
): Promise<{ digest: string; size: number }> {
  const { ref, unpin } = await store.commitTempBlob(temp);
  store.pins.holdUpload(ref.digest, Date.now() + graceMs);
  unpin();
  return ref;
}
