/**
 * Engine benchmark: node-llama-cpp called directly vs the llmos runner (llama-ffi in a child process over IPC, as
 * the daemon runs it) and the llama-ffi engine in this process (both decode modes), single stream, prompt and
 * generation tokens/s (medians of N repetitions), and aggregate generation tokens/s of one runner at several
 * concurrent sequences; optional references (llama-bench, llama-server) are measured in the same rounds.
 * Run alone with engine-bench-cli.ts.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { EngineModel, GenerateParams, GenerateResult, SamplingOptions } from "../src/engine/engine.js";
import { ChildProcessRunnerFactory } from "../src/runtime/child-process-runner-factory.js";
import { createLogger } from "../src/telemetry/logger.js";
import { LlamaFfiEngine, type DecodeMode } from "../src/engine/llama-ffi/index.js";
import { settle, spread, type Spread } from "./stats.js";

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
  /**
   * Other programs measured in the same rounds as the engines (e.g. llama-bench), by name: one run each per round,
   * so that load from other processes hits every variant alike.
   */
  references?: Record<string, () => Promise<StreamNumbers>>;
  /**
   * Folder of a CPU backend built on this machine: the runner and the in-process engines use it, and the runner is
   * measured with the shipped CPU backend too, in the same rounds. Default: none (shipped only).
   */
  cpuBackendDir?: string | null;
  /** Aggregate references (e.g. llama-server --parallel N) measured in the same rounds as llama-ffi at `concurrency`. */
  aggregateReferences?: Array<{
    name: string;
    concurrency: number;
    start: () => Promise<{ aggregate(tokens: number): Promise<number>; close(): void }>;
  }>;
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
    /** The llmos runner: llama-ffi in a child process driven over IPC, as the daemon runs it. */
    runner: StreamNumbers;
    /** The same runner on the shipped CPU backend, when `runner` uses one built here. */
    runnerShipped?: StreamNumbers;
    /** llama-ffi in the benchmark process, sync and async decode. */
    ffiSync: StreamNumbers;
    ffiAsync: StreamNumbers;
    /** The references of the options, measured in the same rounds. */
    references: Record<string, { promptTps: Spread; generationTps: Spread }>;
    /** Every round's numbers of the llmos variants, in round order (paired with the references' samples). */
    rounds?: Record<string, StreamNumbers[]>;
  };
  /** Prompt length of the aggregate runs (short, so the numbers show generation throughput). */
  aggregatePromptTokens: number;
  /** The llmos runner: generated tokens/s of all streams over wall time (short prompts included). */
  aggregate: Array<{
    concurrency: number;
    tokensPerSecond: number;
    multiSequenceBatches: number;
    maxSequencesInBatch: number;
  }>;
  /** Aggregate references measured in the same rounds (their own prompt, the same number of generated tokens). */
  aggregateReferences: Array<{ name: string; concurrency: number; tokensPerSecond: Spread; llmosSameRounds: Spread }>;
  /** The runner on the shipped CPU backend at 4 sequences, same rounds as `runner` (when it uses one built here). */
  aggregateShipped?: { concurrency: number; tokensPerSecond: Spread; llmosSameRounds: Spread };
}

export const GREEDY: SamplingOptions = {
  temperature: 0,
  topK: 0,
  topP: 1,
  minP: 0,
  repeatPenalty: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
  penaltyLastN: 0,
};

const AGGREGATE_PROMPT_TOKENS = 8;
const SHIPPED = "llmos runner, shipped CPU backend";

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

/** An engine model or a runner: both generate the same way. */
interface Generates {
  generate(params: GenerateParams): AsyncIterable<unknown> & { readonly result: Promise<GenerateResult> };
}

/**
 * One timed single stream, measured as llama-bench does: prompt processing of the whole prompt (one token
 * generated), and generation from an empty context (the first token only: `tokens` decodes of one token each).
 * Timings are the engine's own. The prompt cache is off: every repetition evaluates the whole prompt.
 */
async function streamOnce(model: Generates, prompt: number[], tokens: number): Promise<StreamNumbers> {
  const run = async (p: number[], maxTokens: number) => {
    const g = model.generate({
      prompt: p,
      maxTokens,
      sampling: GREEDY,
      stop: [],
      stopAtEog: false,
      cachePrompt: false,
    });
    for await (const c of g) void c;
    return g.result;
  };
  const pp = await run(prompt, 1);
  const tg = await run(prompt.slice(0, 1), tokens);
  return {
    promptTokensPerSecond: prompt.length / (pp.promptMs / 1000),
    generationTokensPerSecond: (tg.completionTokens - 1) / (tg.generateMs / 1000),
  };
}

/**
 * `n` concurrent generations; generated tokens per wall-clock second (prompt processing included, without the
 * prompt cache, like the llama-server references' `cache_prompt: false`).
 */
async function aggregateOnce(model: Generates, prompt: number[], tokens: number, n: number): Promise<number> {
  const t0 = performance.now();
  const results = await Promise.all(
    Array.from({ length: n }, async () => {
      const g = model.generate({
        prompt,
        maxTokens: tokens,
        sampling: GREEDY,
        stop: [],
        stopAtEog: false,
        cachePrompt: false,
      });
      for await (const c of g) void c;
      return g.result;
    }),
  );
  return results.reduce((s, r) => s + r.completionTokens, 0) / ((performance.now() - t0) / 1000);
}

type BenchParams = Required<Omit<EngineBenchOptions, "log" | "references" | "aggregateReferences" | "cpuBackendDir">>;

function medians(xs: StreamNumbers[]): StreamNumbers {
  return {
    promptTokensPerSecond: median(xs.map((x) => x.promptTokensPerSecond)),
    generationTokensPerSecond: median(xs.map((x) => x.generationTokensPerSecond)),
  };
}

/** node-llama-cpp: one context, `sequence.evaluate` greedy loop (runs in the child process). */
export async function nodeLlamaCppSingle(o: BenchParams): Promise<StreamNumbers> {
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never", maxThreads: o.threads, logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: o.modelPath, gpuLayers: 0 });
  const context = await model.createContext({
    contextSize: o.promptTokens + o.tokens + 16,
    sequences: 1,
    threads: o.threads,
  });
  try {
    const sequence = context.getSequence();
    const base = model.tokenize(TEXT);
    const prompt = model.tokens.bos !== null ? [model.tokens.bos] : [];
    while (prompt.length < o.promptTokens) prompt.push(...base);
    prompt.length = o.promptTokens;
    const pp: number[] = [];
    const tg: number[] = [];
    // As llama-bench: the prompt alone, then generation from an empty context.
    const timed = async (input: typeof prompt, tokens: number) => {
      await sequence.clearHistory();
      const t0 = performance.now();
      let first = 0;
      let n = 0;
      for await (const token of sequence.evaluate(input, { temperature: 0 })) {
        void token;
        if (++n === 1) first = performance.now();
        if (n >= tokens) break;
      }
      return { t0, first, end: performance.now(), n };
    };
    for (let rep = -1; rep < o.repetitions; rep++) {
      const p = await timed(prompt, 1);
      const g = await timed(prompt.slice(0, 1), o.tokens);
      if (rep < 0) continue;
      pp.push(prompt.length / ((p.first - p.t0) / 1000));
      tg.push((g.n - 1) / ((g.end - g.first) / 1000));
    }
    const res = { promptTokensPerSecond: median(pp), generationTokensPerSecond: median(tg) };
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
async function nodeLlamaCppInChild(o: BenchParams, log: (s: string) => void): Promise<StreamNumbers> {
  const args = [
    ...process.execArgv,
    fileURLToPath(new URL(`./engine-bench-cli${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`, import.meta.url)),
    "--nlc-only",
    "--model",
    o.modelPath,
    "--threads",
    String(o.threads),
    "--tokens",
    String(o.tokens),
    "--prompt-tokens",
    String(o.promptTokens),
    "--reps",
    "1",
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

/**
 * Run the whole benchmark on one model. Measurements are interleaved round by round (node-llama-cpp, ffi-sync,
 * ffi-async, ...) so that load from other processes on a shared machine hits every variant alike; each value is
 * the median over rounds, after one warm-up round.
 */
export async function runEngineBench(opts: EngineBenchOptions): Promise<EngineBenchResult> {
  const o: BenchParams = {
    modelPath: opts.modelPath,
    threads: opts.threads ?? 2,
    tokens: opts.tokens ?? 64,
    promptTokens: opts.promptTokens ?? 128,
    repetitions: opts.repetitions ?? 5,
    concurrency: opts.concurrency ?? [1, 2, 4],
    includeNodeLlamaCpp: opts.includeNodeLlamaCpp ?? true,
  };
  const log = opts.log ?? (() => undefined);
  const modes: DecodeMode[] = ["sync", "async"];
  const engines = new Map<DecodeMode, LlamaFfiEngine>();
  const runners = new ChildProcessRunnerFactory(createLogger("warn", process.stderr));
  const cpuBackendDir = opts.cpuBackendDir ?? null;
  const startRunner = (slots: number, contextSize: number, cpu = cpuBackendDir) =>
    runners.start(
      {
        engine: "llama-ffi",
        gpu: false,
        cpuBackendDir: cpu,
        streamIntervalMs: 20,
        modelPath: o.modelPath,
        contextSize,
        slots,
        threads: o.threads,
        gpuLayers: 0,
      },
      "bench",
    );
  try {
    for (const mode of modes) engines.set(mode, await LlamaFfiEngine.create({ decodeMode: mode, cpuBackendDir }));
    const load = (mode: DecodeMode): Promise<EngineModel> =>
      engines.get(mode)!.load({
        modelPath: o.modelPath,
        contextSize: o.promptTokens + o.tokens + 16,
        slots: 1,
        threads: o.threads,
        gpuLayers: 0,
      });

    // Single stream: the llmos runner (a child process, as the daemon runs it) and the engine in this process.
    const singles = new Map<DecodeMode, EngineModel>();
    for (const mode of modes) singles.set(mode, await load(mode));
    const runner = await startRunner(1, o.promptTokens + o.tokens + 16);
    const runnerShipped = cpuBackendDir ? await startRunner(1, o.promptTokens + o.tokens + 16, null) : undefined;
    const prompt = promptOf(singles.get("sync")!, o.promptTokens);
    const variants: Array<[keyof EngineBenchResult["single"], Generates]> = [
      ["runner", runner],
      ["ffiSync", singles.get("sync")!],
      ["ffiAsync", singles.get("async")!],
    ];
    if (runnerShipped) variants.push(["runnerShipped", runnerShipped]);
    const nlc: StreamNumbers[] = [];
    const runs = new Map<string, StreamNumbers[]>(variants.map(([name]) => [name, []]));
    const refs = Object.entries(opts.references ?? {});
    const refRuns = new Map<string, StreamNumbers[]>(refs.map(([name]) => [name, []]));
    try {
      for (let round = -1; round < o.repetitions; round++) {
        if (o.includeNodeLlamaCpp) {
          await settle();
          const r = await nodeLlamaCppInChild(o, log);
          if (round >= 0) nlc.push(r);
        }
        for (const [name, runRef] of refs) {
          await settle();
          const r = await runRef();
          if (round >= 0) refRuns.get(name)!.push(r);
        }
        for (const [name, g] of variants) {
          await settle();
          const r = await streamOnce(g, prompt, o.tokens);
          if (round >= 0) runs.get(name)!.push(r);
        }
        if (round >= 0) log(`round ${round + 1}/${o.repetitions} done`);
      }
    } finally {
      for (const m of singles.values()) await m.dispose();
      await runner.stop();
      await runnerShipped?.stop();
    }
    const single: EngineBenchResult["single"] = {
      ...(o.includeNodeLlamaCpp ? { nodeLlamaCpp: medians(nlc) } : {}),
      runner: medians(runs.get("runner")!),
      ffiSync: medians(runs.get("ffiSync")!),
      ffiAsync: medians(runs.get("ffiAsync")!),
      ...(runnerShipped ? { runnerShipped: medians(runs.get("runnerShipped")!) } : {}),
      rounds: Object.fromEntries(runs),
      references: Object.fromEntries(
        [...refRuns].map(([name, rs]) => [
          name,
          {
            promptTps: spread(rs.map((r) => r.promptTokensPerSecond)),
            generationTps: spread(rs.map((r) => r.generationTokensPerSecond)),
          },
        ]),
      ),
    };
    for (const [name, v] of Object.entries(single)) {
      if (name === "references" || name === "rounds") continue;
      const s = v as StreamNumbers;
      log(
        `${name} single: pp ${s.promptTokensPerSecond.toFixed(1)} t/s, tg ${s.generationTokensPerSecond.toFixed(1)} t/s`,
      );
    }
    for (const [name, v] of Object.entries(single.references))
      log(`${name} single: pp ${v.promptTps.median.toFixed(1)} t/s, tg ${v.generationTps.median.toFixed(1)} t/s`);

    // Aggregate over concurrent sequences in one llmos runner, with a short prompt; each sequence gets 512
    // positions (one KV stream each), as llama-server's slots.
    const aggregate: EngineBenchResult["aggregate"] = [];
    const aggregateReferences: EngineBenchResult["aggregateReferences"] = [];
    let aggregateShipped: EngineBenchResult["aggregateShipped"];
    const shortPrompt = prompt.slice(0, AGGREGATE_PROMPT_TOKENS);
    for (const n of o.concurrency) {
      const r = await startRunner(n, n * 512);
      const rates: number[] = [];
      const started: Array<{
        name: string;
        server: { aggregate(tokens: number): Promise<number>; close(): void | Promise<void> };
        rates: number[];
      }> = [];
      try {
        for (const ref of (opts.aggregateReferences ?? []).filter((a) => a.concurrency === n))
          started.push({ name: ref.name, server: await ref.start(), rates: [] });
        if (cpuBackendDir && n === 4) {
          const shipped = await startRunner(n, n * 512, null);
          const server = {
            aggregate: (tokens: number) => aggregateOnce(shipped, shortPrompt, tokens, n),
            close: () => shipped.stop(),
          };
          started.push({ name: SHIPPED, server, rates: [] });
        }
        for (let round = -1; round < o.repetitions; round++) {
          await settle();
          const rate = await aggregateOnce(r, shortPrompt, o.tokens, n);
          if (round >= 0) rates.push(rate);
          for (const s of started) {
            await settle();
            const sr = await s.server.aggregate(o.tokens);
            if (round >= 0) s.rates.push(sr);
          }
        }
        const stats = (await r.stats()).engine;
        const row = {
          concurrency: n,
          tokensPerSecond: median(rates),
          multiSequenceBatches: stats.multiSequenceBatches,
          maxSequencesInBatch: stats.maxSequencesInBatch,
        };
        log(
          `runner x${n}: ${row.tokensPerSecond.toFixed(1)} t/s aggregate (max ${row.maxSequencesInBatch} seqs/batch)`,
        );
        aggregate.push(row);
        for (const s of started) {
          if (s.name === SHIPPED)
            aggregateShipped = { concurrency: n, tokensPerSecond: spread(s.rates), llmosSameRounds: spread(rates) };
          else
            aggregateReferences.push({
              name: s.name,
              concurrency: n,
              tokensPerSecond: spread(s.rates),
              llmosSameRounds: spread(rates),
            });
          log(`${s.name} x${n}: ${spread(s.rates).median.toFixed(1)} t/s aggregate`);
        }
      } finally {
        for (const s of started) await s.server.close();
        await r.stop();
      }
    }
    return {
      modelPath: o.modelPath,
      threads: o.threads,
      tokens: o.tokens,
      promptTokens: o.promptTokens,
      repetitions: o.repetitions,
      single,
      aggregatePromptTokens: shortPrompt.length,
      aggregate,
      aggregateReferences,
      ...(aggregateShipped ? { aggregateShipped } : {}),
    };
  } finally {
    for (const e of engines.values()) await e.dispose();
  }
}
