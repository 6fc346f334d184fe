// Paths of the shared real models, resolved from the repository root (never hard-coded).
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root: packages/gguf/test -> ../../.. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const MODELS_DIR = resolve(REPO_ROOT, "../shared/models");
export const STORIES = resolve(MODELS_DIR, "stories260K.gguf");
export const TINY = resolve(MODELS_DIR, "llama-2-tiny-random.gguf");

export function haveModels(): boolean {
  return existsSync(STORIES) && existsSync(TINY);
}

const cache = new Map<string, Buffer>();
/** The bytes of a model file (cached; callers must copy before mutating). */
export function modelBytes(path: string): Buffer {
  let b = cache.get(path);
  if (!b) {
    b = readFileSync(path);
    cache.set(path, b);
  }
  return b;
}
