/**
 * Creates the standard synthetic models into a cache folder when missing.
 * Usage: node packages/gguf/dist/src/cli/synth.js [--out DIR] [--only NAME[,NAME]] ...
 * Default DIR: <repo>/.cache/models (gitignored). The 32000-token Llama-2 vocabulary is copied from
 * <repo>/../shared/models/llama-2-tiny-random.gguf when that file exists; otherwise the byte tokenizer is used.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ensureSynthModels } from "../synth-cache.js";

/** The monorepo root: the nearest folder above this file whose package.json declares workspaces. */
export function findRepoRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, "utf8")) as { workspaces?: unknown }).workspaces) return dir;
      } catch {
        // not a readable package.json: keep walking up
      }
    }
    if (dirname(dir) === dir) throw new Error(`no workspace root above ${from}`);
  }
}

/** Parsed command line. */
export interface SynthArgs {
  out?: string;
  only?: string[];
  help: boolean;
}

/** Parses `--out DIR`, `--only NAME[,NAME]` (repeatable) and `--help`. */
export function parseSynthArgs(argv: readonly string[]): SynthArgs {
  const args: SynthArgs = { help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v.startsWith("--")) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--out") args.out = value();
    else if (a === "--only") args.only = [...(args.only ?? []), ...value().split(",").filter(Boolean)];
    else if (a === "--help" || a === "-h") args.help = true;
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

/** Runs the command; returns the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let args: SynthArgs;
  try {
    args = parseSynthArgs(argv);
  } catch (e) {
    console.error(`synth: ${(e as Error).message}`);
    return 2;
  }
  if (args.help) {
    console.log("usage: synth [--out DIR] [--only llama-42m,llama-110m,llama-42m-q8_0,llama-110m-q8_0]");
    return 0;
  }
  const root = findRepoRoot();
  const tokenizer = resolve(root, "../shared/models/llama-2-tiny-random.gguf");
  const outDir = resolve(args.out ?? join(root, ".cache/models"));
  try {
    const results = await ensureSynthModels({
      outDir,
      ...(args.only ? { only: args.only } : {}),
      ...(existsSync(tokenizer) ? { tokenizerSource: tokenizer } : {}),
      log: (line) => console.log(line),
    });
    for (const r of results) console.log(`${r.path}\t${r.bytes} bytes\t${r.created ? "created" : "present"}`);
    return 0;
  } catch (e) {
    console.error(`synth: ${(e as Error).message}`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
