/**
 * `npm run bench:quantization` (`-- --quick` for a short run): the quantization section of `npm run bench` alone.
 * Writes the measured tables into docs/quantization.md (between its markers) and docs/quantization.json.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ensureSynthModels } from "@llmos/gguf";
import { runQuantizationBench } from "./quantization-bench.js";
import { writeQuantizationReport } from "./quantization-report.js";

const REPO = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  process.argv[1]?.includes("/dist/") ? "../../../.." : "../../..",
);
const SHARED = path.resolve(REPO, "../shared/models");
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

/** Types measured: the quick run keeps two. */
export function quantizationTypes(quick: boolean): string[] {
  return quick
    ? ["Q8_0", "Q4_K_M"]
    : ["Q8_0", "Q6_K", "Q5_K_M", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_0", "IQ4_NL", "IQ4_XS", "Q3_K_M", "Q2_K"];
}

/** Runs the section and writes docs/quantization.md; used by this entry and by bench/main.ts. */
export async function quantizationSection(opts: { quick: boolean; threads: number; out?: string }): Promise<void> {
  const synth = await ensureSynthModels({
    outDir: path.join(REPO, ".cache", "models"),
    only: opts.quick ? ["llama-42m"] : ["llama-42m", "llama-110m"],
    tokenizerSource: path.join(SHARED, "llama-2-tiny-random.gguf"),
    log,
  });
  const byName = Object.fromEntries(synth.map((s) => [s.name, s.path]));
  const models = [
    { name: "stories260K", path: path.join(SHARED, "stories260K.gguf"), contextSize: 128 },
    ...(opts.quick
      ? []
      : [{ name: "llama-2-tiny-random", path: path.join(SHARED, "llama-2-tiny-random.gguf"), contextSize: 512 }]),
    ...synth.map((s) => ({ name: s.name, path: s.path, contextSize: 512 })),
  ];
  const report = await runQuantizationBench({
    models,
    ...(byName["llama-42m"] ? { kvModel: { name: "llama-42m", path: byName["llama-42m"] } } : {}),
    types: quantizationTypes(opts.quick),
    threads: opts.threads,
    quick: opts.quick,
    evalTextFile: path.join(REPO, "packages", "cli", "data", "eval-text.txt"),
    log,
  });
  const out = opts.out ?? path.join(REPO, "docs", "quantization.md");
  writeQuantizationReport(out, report);
  log(`wrote ${out} in ${report.durationSeconds}s`);
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1]);
if (isMain) {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      threads: { type: "string", default: "2" },
      out: { type: "string" },
    },
  });
  quantizationSection({
    quick: values.quick!,
    threads: Number(values.threads),
    ...(values.out ? { out: values.out } : {}),
  }).then(
    () => process.exit(0),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
