import { existsSync, mkdirSync, renameSync } from "node:fs";
import path from "node:path";
import { synthesizeLlamaModel, type LlamaShape } from "@llmos/gguf";
import { REPO_ROOT, TINY_RANDOM } from "./paths.js";

/** Cache folder for synthetic test models (gitignored). */
export const SYNTH_DIR = path.join(REPO_ROOT, ".cache", "models");

/**
 * A synthetic llama model slow enough (~100-300 tokens/s at 1 thread) to hold a slot busy while a test acts,
 * with the real 32k Llama-2 vocabulary. Written once and cached.
 */
export async function slowModel(): Promise<string> {
  return ensureModel("test-slow-256x4-f16", {
    dim: 256,
    layers: 4,
    heads: 8,
    ffn: 688,
    type: "F16",
    contextLength: 4096,
    seed: 7,
    tokenizer: { copyFrom: TINY_RANDOM },
  });
}

export async function ensureModel(name: string, shape: LlamaShape): Promise<string> {
  mkdirSync(SYNTH_DIR, { recursive: true });
  const file = path.join(SYNTH_DIR, `${name}.gguf`);
  if (existsSync(file)) return file;
  const tmp = `${file}.${process.pid}.tmp`;
  await synthesizeLlamaModel(tmp, shape);
  renameSync(tmp, file);
  return file;
}
