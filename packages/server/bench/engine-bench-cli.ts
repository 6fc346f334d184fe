/**
 * The engine benchmark on its own:
 *
 *   node --conditions=llmos-source --import tsx packages/server/bench/engine-bench-cli.ts \
 *     --model <path> [--threads 2] [--tokens 64] [--prompt-tokens 128] [--reps 5] [--synth llama-42m]
 *
 * `--synth <shape>` writes a synthetic model of that @llmos/gguf SYNTH_SHAPES shape to <repo>/.cache/models/
 * (once) and benchmarks it. Results are JSON on stdout; progress on stderr. `--nlc-only` measures only
 * node-llama-cpp (the engine benchmark runs it so, in a child process).
 */
import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { ensureSynthModels } from "@llmos/gguf";
import { nodeLlamaCppSingle, runEngineBench } from "./engine-bench.js";

/** Path of a standard synthetic model under <repo>/.cache/models/, written on first use. */
async function synthModel(shapeName: string): Promise<string> {
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
  const [made] = await ensureSynthModels({
    outDir: resolve(repoRoot, ".cache/models"),
    only: [shapeName],
    tokenizerSource: resolve(repoRoot, "../shared/models/llama-2-tiny-random.gguf"),
  });
  if (!made) throw new Error(`unknown synthetic shape ${shapeName}`);
  return made.path;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: "string" },
      synth: { type: "string" },
      threads: { type: "string", default: "2" },
      tokens: { type: "string", default: "64" },
      "prompt-tokens": { type: "string", default: "128" },
      reps: { type: "string", default: "5" },
      "no-node-llama-cpp": { type: "boolean", default: false },
      "nlc-only": { type: "boolean", default: false },
    },
  });
  const log = (line: string): void => void process.stderr.write(line + "\n");
  if (values["nlc-only"]) {
    const numbers = await nodeLlamaCppSingle({
      modelPath: values.model!,
      threads: Number(values.threads),
      tokens: Number(values.tokens),
      promptTokens: Number(values["prompt-tokens"]),
      repetitions: Number(values.reps),
      concurrency: [],
      includeNodeLlamaCpp: true,
    });
    process.stdout.write(JSON.stringify(numbers) + "\n");
    return;
  }
  const modelPath = values.synth ? await synthModel(values.synth) : values.model;
  if (!modelPath) throw new Error("--model <path> or --synth <shape> is required");
  const result = await runEngineBench({
    modelPath: resolve(modelPath),
    threads: Number(values.threads),
    tokens: Number(values.tokens),
    promptTokens: Number(values["prompt-tokens"]),
    repetitions: Number(values.reps),
    includeNodeLlamaCpp: !values["no-node-llama-cpp"],
    log,
  });
  process.stdout.write(JSON.stringify(result, null, 2) + "\n");
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    process.stderr.write(String(err instanceof Error ? (err.stack ?? err.message) : err) + "\n");
    process.exit(1);
  });
}
