import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root (packages/server/test/store -> four levels up). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
/** Shared read-only test models. */
export const MODELS_DIR = path.resolve(REPO_ROOT, "../shared/models");
export const STORIES = path.join(MODELS_DIR, "stories260K.gguf");
export const STORIES_SHA256 = "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d";
export const TINY = path.join(MODELS_DIR, "llama-2-tiny-random.gguf");
export const TINY_SHA256 = "81f226c62d28ed4a1a9b9fa080fcd9f0cc40e0f9d5680036583ff98fbcd035cb";

/** A fresh temp folder; `cleanup()` deletes it. */
export function tempDir(prefix = "llmos-store-"): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Files (recursively, relative) under a folder. */
export function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => fs.statSync(path.join(dir, f)).isFile())
    .sort();
}
