/**
 * The multi-model contention benchmark on its own (`npm run bench` runs it as one of its sections):
 *
 *   node --conditions=llmos-source --import tsx packages/server/bench/contention-bench-cli.ts \
 *     [--quick] [--cores 2] [--window-ms 3000] [--rounds 3]
 *
 * Writes the results as JSON on stdout and the report's section as Markdown on stderr; progress on stderr.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ensureSynthModels } from "@llmos/gguf";
import { builtHereCpuBackendDir } from "./native-bench.js";
import { contentionMixes, contentionSection } from "./contention-report.js";
import { runContentionBench } from "./contention-bench.js";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const SHARED = path.resolve(REPO, "../shared/models");

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      cores: { type: "string", default: "2" },
      "window-ms": { type: "string" },
      rounds: { type: "string" },
    },
  });
  const quick = values.quick!;
  const log = (line: string) => process.stderr.write(`[contention] ${line}\n`);
  const synth = await ensureSynthModels({
    outDir: path.join(REPO, ".cache", "models"),
    only: quick ? ["llama-42m"] : ["llama-42m", "llama-110m"],
    tokenizerSource: path.join(SHARED, "llama-2-tiny-random.gguf"),
    log,
  });
  const files: Record<string, string> = { stories260K: path.join(SHARED, "stories260K.gguf") };
  for (const s of synth) files[s.name] = s.path;
  const { models, mixes } = contentionMixes(files, quick);
  const bench = await runContentionBench({
    models,
    mixes,
    cores: Number(values.cores),
    windowMs: Number(values["window-ms"] ?? (quick ? 1500 : 3000)),
    rounds: Number(values.rounds ?? (quick ? 1 : 3)),
    quantaMs: quick ? [50] : [20, 100],
    tokens: 256,
    cpuBackendDir: builtHereCpuBackendDir(),
    log,
  });
  process.stdout.write(JSON.stringify(bench, null, 2) + "\n");
  process.stderr.write(contentionSection(bench).join("\n") + "\n");
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(String(error instanceof Error ? (error.stack ?? error.message) : error) + "\n");
    process.exit(1);
  },
);
