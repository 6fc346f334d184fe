import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root (this file is packages/server/test/support/paths.ts; built, one level deeper in dist/). */
export const REPO_ROOT = path.resolve(here, here.split(path.sep).includes("dist") ? "../../../../.." : "../../../..");
/** Shared, read-only real models beside the checkout. */
export const MODELS_DIR = path.resolve(REPO_ROOT, "../shared/models");
export const STORIES = path.join(MODELS_DIR, "stories260K.gguf");
export const TINY_RANDOM = path.join(MODELS_DIR, "llama-2-tiny-random.gguf");
/** Greedy completion of "Once upon a time" on one sequence (see ../shared/models/README.md). */
export const STORIES_GOLDEN = ", there was a little girl named Lily. She loved to play outside in the park.";
