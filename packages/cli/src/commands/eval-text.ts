import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The public-domain text shipped with the CLI (packages/cli/data/eval-text.txt; see data/README.md). */
export function defaultEvalText(): { name: string; text: string } {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // src/commands (from source) or dist/src/commands (built)
  for (const up of ["../../data", "../../../data"]) {
    const file = path.resolve(here, up, "eval-text.txt");
    if (existsSync(file)) return { name: "eval-text.txt", text: readFileSync(file, "utf8") };
  }
  throw new Error("the shipped evaluation text is missing: give --text <file>");
}

/** The text of `--text <file>`, or the shipped one. */
export function evalText(file: string | undefined): { name: string; text: string } {
  if (file === undefined) return defaultEvalText();
  return { name: path.basename(file), text: readFileSync(file, "utf8") };
}
