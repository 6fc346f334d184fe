/**
 * Engine benchmark: node-llama-cpp called directly vs the llama-ffi engine (both decode modes), single stream,
 * prompt and generation tokens/s (medians of N repetitions), and aggregate generation tokens/s of llama-ffi at
 * 1, 2 and 4 concurrent sequences.
 *
 *   node --conditions=llmos-source --import tsx packages/server/bench/engine-bench.ts \
 *     --model <path> [--threads 2] [--tokens 64] [--prompt-tokens 128] [--reps 5] [--synth llama-42m]
 *
 * `--synth <shape>` writes a synthetic model of that @llmos/gguf SYNTH_SHAPES shape to <repo>/.cache/models/
 * (once) and benchmarks it. Results are JSON on stdout; progress on stderr.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import type { EngineModel, SamplingOptions } from "../src/engine/engine.js";
import { LlamaFfiEngine, type DecodeMode } from "../src/engine/llama-ffi/index.js";

/** Options of one benchmark run. */
export interface EngineBenchOptions {
  modelPath: string;
  /** Decode threads for both engines. Default 2. */
  threads?: number;
  /** Tokens generated per stream. Default 64. */
  tokens?: number;
  /** Prompt length in tokens. Default 128. */
  promptTokens?: number;
  /** Repetitions per measurement (the median is reported). Default 5. */
  repetitions?: number;
  /** Concurrency levels for the aggregate measurement. Default [1, 2, 4]. */
  concurrency?: number[];
  /** Also measure node-llama-cpp. Default true. */
  includeNodeLlamaCpp?: boolean;
  /** Progress lines. Default: none. */
  log?: (line: string) => void;
}

/** Medians of a single-stream measurement. */
export interface StreamNumbers {
  promptTokensPerSecond: number;
  generationTokensPerSecond: number;
}

export interface EngineBenchResult {
  modelPath: string;
  threads: number;
  tokens: number;
  promptTokens: number;
  repetitions: number;
  single: {
    nodeLlamaCpp?: StreamNumbers;
    ffiSync: StreamNumbers;
    ffiAsync: StreamNumbers;
  };
  /** llama-ffi (sync decode mode): aggregate generated tokens/s over wall time, prompt included. */
  aggregate: Array<{ concurrency: number; decodeMode: DecodeMode; tokensPerSecond: number; multiSequenceBatches: number; maxSequencesInBatch: number }>;
}

const GREEDY: SamplingOptions = {
  temperature: 0,
  topK: 0,
  topP: 1,
  minP: 0,
  repeatPenalty: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
  penaltyLastN: 0,
};

const TEXT =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. " +
  "One day, she saw a big red ball under a tree and ran to get it. ";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function promptOf(model: EngineModel, n: number): number[] {
  const base = model.tokenize(TEXT);
  const out = model.facts.bosToken !== null ? [model.facts.bosToken] : [];
  while (out.length < n) out.push(...base);
  return out.slice(0, n);
}

async function ffiSingle(
  engine: LlamaFfiEngine,
  o: Required<Omit<EngineBenchOptions, "log">>,
  log: (s: string) => void,
  mode: DecodeMode,
): Promise<StreamNumbers> {
  const ctx = o.promptTokens + o.tokens + 16;
  const model = await engine.load({ modelPath: o.modelPath, contextSize: ctx, slots: 1, threads: o.threads, gpuLayers: 0 });
  try {
    const prompt = promptOf(model, o.promptTokens);
    const pp: number[] = [];
    const tg: number[] = [];
    for (let rep = -1; rep < o.repetitions; rep++) {
      const g = model.generate({ prompt, maxTokens: o.tokens, sampling: GREEDY, stop: [], stopAtEog: false });
      for await (const c of g) void c;
      const r = await g.result;
      if (rep < 0) continue; // warm-up
      pp.push(prompt.length / (r.promptMs / 1000));
      tg.push((r.completionTokens - 1) / (r.generateMs / 1000));
    }
    const res = { promptTokensPerSecond: median(pp), generationTokensPerSecond: median(tg) };
    log(`ffi-${mode} single: pp ${res.promptTokensPerSecond.toFixed(1)} t/s, tg ${res.generationTokensPerSecond.toFixed(1)} t/s`);
    return res;
  } finally {
    await model.dispose();
  }
}

async function ffiAggregate(
  engine: LlamaFfiEngine,
  o: Required<Omit<EngineBenchOptions, "log">>,
  log: (s: string) => void,
  mode: DecodeMode,
): Promise<EngineBenchResult["aggregate"]> {
  const out: EngineBenchResult["aggregate"] = [];
  for (const n of o.concurrency) {
    const ctx = n * (o.promptTokens + o.tokens + 16);
    const model = await engine.load({ modelPath: o.modelPath, contextSize: ctx, slots: n, threads: o.threads, gpuLayers: 0 });
    try {
      const prompt = promptOf(model, o.promptTokens);
      const rates: number[] = [];
      for (let rep = -1; rep < o.repetitions; rep++) {
        const t0 = performance.now();
        const gens = Array.from({ length: n }, () =>
          model.generate({ prompt, maxTokens: o.tokens, sampling: GREEDY, stop: [], stopAtEog: false }),
        );
        const results = await Promise.all(
          gens.map(async (g) => {
            for await (const c of g) void c;
            return g.result;
          }),
        );
        const wall = (performance.now() - t0) / 1000;
        if (rep >= 0) rates.push(results.reduce((s, r) => s + r.completionTokens, 0) / wall);
      }
      const stats = model.stats();
      const row = {
        concurrency: n,
        decodeMode: mode,
        tokensPerSecond: median(rates),
        multiSequenceBatches: stats.multiSequenceBatches,
        maxSequencesInBatch: stats.maxSequencesInBatch,
      };
      log(`ffi-${mode} x${n}: ${row.tokensPerSecond.toFixed(1)} t/s aggregate (max ${row.maxSequencesInBatch} seqs/batch)`);
      out.push(row);
    } finally {
      await model.dispose();
    }
  }
  return out;
}

async function nodeLlamaCppSingle(o: Required<Omit<EngineBenchOptions, "log">>, log: (s: string) => void): Promise<StreamNumbers> {
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never", maxThreads: o.threads, logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: o.modelPath, gpuLayers: 0 });
  const context = await model.createContext({ contextSize: o.promptTokens + o.tokens + 16, sequences: 1, threads: o.threads });
  try {
    const sequence = context.getSequence();
    const base = model.tokenize(TEXT);
    const prompt = model.tokens.bos !== null ? [model.tokens.bos] : [];
    while (prompt.length < o.promptTokens) prompt.push(...base);
    prompt.length = o.promptTokens;
    const pp: number[] = [];
    const tg: number[] = [];
    for (let rep = -1; rep < o.repetitions; rep++) {
      await sequence.clearHistory();
      const t0 = performance.now();
      let first = 0;
      let n = 0;
      for await (const token of sequence.evaluate(prompt, { temperature: 0 })) {
        void token;
        if (++n === 1) first = performance.now();
        if (n >= o.tokens) break;
      }
      const end = performance.now();
      if (rep < 0) continue;
      pp.push(prompt.length / ((first - t0) / 1000));
      tg.push((n - 1) / ((end - first) / 1000));
    }
    const res = { promptTokensPerSecond: median(pp), generationTokensPerSecond: median(tg) };
    log(`node-llama-cpp single: pp ${res.promptTokensPerSecond.toFixed(1)} t/s, tg ${res.generationTokensPerSecond.toFixed(1)} t/s`);
    return res;
  } finally {
    await context.dispose();
    await model.dispose();
    await llama.dispose();
  }
}

/**
 * node-llama-cpp loads the same libllama and installs its own log callback and backends: measure it in a child
 * process so neither library sees the other's global state.
 */
async function nodeLlamaCppInChild(o: Required<Omit<EngineBenchOptions, "log">>, log: (s: string) => void): Promise<StreamNumbers> {
  const args = [
    ...process.execArgv,
    fileURLToPath(import.meta.url),
    "--nlc-only",
    "--model", o.modelPath,
    "--threads", String(o.threads),
    "--tokens", String(o.tokens),
    "--prompt-tokens", String(o.promptTokens),
    "--reps", String(o.repetitions),
  ];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => {
    for (const line of d.toString().split("\n")) if (line.trim()) log(line);
  });
  const code = await new Promise<number | null>((res) => child.on("close", res));
  if (code !== 0) throw new Error(`node-llama-cpp benchmark exited with ${code}`);
  return JSON.parse(out) as StreamNumbers;
}

/** Run the whole benchmark on one model. */
export async function runEngineBench(opts: EngineBenchOptions): Promise<EngineBenchResult> {
  const o: Required<Omit<EngineBenchOptions, "log">> = {
    modelPath: opts.modelPath,
    threads: opts.threads ?? 2,
    tokens: opts.tokens ?? 64,
    promptTokens: opts.promptTokens ?? 128,
    repetitions: opts.repetitions ?? 5,
    concurrency: opts.concurrency ?? [1, 2, 4],
    includeNodeLlamaCpp: opts.includeNodeLlamaCpp ?? true,
  };
  const log = opts.log ?? (() => undefined);
  const nodeLlamaCpp = o.includeNodeLlamaCpp ? await nodeLlamaCppInChild(o, log) : undefined;
  const sync = await LlamaFfiEngine.create({ decodeMode: "sync" });
  const asyncEngine = await LlamaFfiEngine.create({ decodeMode: "async" });
  try {
    const ffiSync = await ffiSingle(sync, o, log, "sync");
    const ffiAsync = await ffiSingle(asyncEngine, o, log, "async");
    const aggregate = [...(await ffiAggregate(sync, o, log, "sync")), ...(await ffiAggregate(asyncEngine, o, log, "async"))];
    return {
      modelPath: o.modelPath,
      threads: o.threads,
      tokens: o.tokens,
      promptTokens: o.promptTokens,
      repetitions: o.repetitions,
      single: { ...(nodeLlamaCpp ? { nodeLlamaCpp } : {}), ffiSync, ffiAsync },
      aggregate,
    };
  } finally {
    await sync.dispose();
    await asyncEngine.dispose();
  }
}

/** Path of a synthetic model under <repo>/.cache/models/, written on first use. */
async function synthModel(shapeName: string): Promise<string> {
  const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
  const path = resolve(repoRoot, ".cache/models", `${shapeName}.gguf`);
  if (existsSync(path)) return path;
  // Typed loosely: the bench must not depend on the gguf package's build state.
  const gguf = (await import("@llmos/gguf")) as unknown as {
    SYNTH_SHAPES?: Record<string, unknown>;
    synthesizeLlamaModel?: (path: string, shape: unknown) => Promise<void>;
  };
  const shape = gguf.SYNTH_SHAPES && Object.hasOwn(gguf.SYNTH_SHAPES, shapeName) ? gguf.SYNTH_SHAPES[shapeName] : undefined;
  if (!shape || !gguf.synthesizeLlamaModel) {
    throw new Error(`unknown synthetic shape ${shapeName} (known: ${Object.keys(gguf.SYNTH_SHAPES ?? {}).join(", ")})`);
  }
  mkdirSync(dirname(path), { recursive: true });
  await gguf.synthesizeLlamaModel(path, shape);
  return path;
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
    const numbers = await nodeLlamaCppSingle(
      {
        modelPath: values.model!,
        threads: Number(values.threads),
        tokens: Number(values.tokens),
        promptTokens: Number(values["prompt-tokens"]),
        repetitions: Number(values.reps),
        concurrency: [],
        includeNodeLlamaCpp: true,
      },
      log,
    );
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
