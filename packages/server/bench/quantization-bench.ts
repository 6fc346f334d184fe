/**
 * The benchmark's quantization section: each model quantized to each type by the model-tool worker (the code
 * `llmos quantize` runs), then its size, its speed in a real runner (prompt and generation tokens/s) and its
 * quality on the shipped evaluation text (perplexity, and KL divergence against the F16 version). KV cache types
 * on the 42M model at a 2048-token context: memory (estimate and runner RSS) and KL divergence against f16.
 * When llama.cpp's own tools are built (`npm run bench:native`), llmos's quantized files are compared with
 * llama-quantize's byte for byte, and its perplexity with llama-perplexity's.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { quantizeTarget, readGguf, summarizeGguf } from "@llmos/gguf";
import type { EvalResult, QuantizeResult } from "../src/runner/tool-ipc-protocol.js";
import { ChildProcessRunnerFactory } from "../src/runtime/child-process-runner-factory.js";
import { ToolWorkers } from "../src/runtime/tool-worker.js";
import { estimateMemory, modelShapeOf } from "../src/scheduler/memory-estimator.js";
import type { KvCacheType } from "../src/scheduler/kv-cache.js";
import { createLogger } from "../src/telemetry/logger.js";
import { GREEDY } from "./engine-bench.js";
import { nativeDir } from "./native-bench.js";
import { median } from "./stats.js";

const run = promisify(execFile);

/** One model at one type. */
export interface QuantRow {
  type: string;
  bytes: number;
  fallbackTensors: number;
  quantizeSeconds: number;
  promptTps: number;
  generationTps: number;
  perplexity: number;
  /** Against the F16 version (absent for F16 itself, which is the base). */
  kld?: { mean: number; p99: number };
  topTokenAgreement?: number;
  /** llama-quantize's file on the same input and type: same sha256? (absent when it is not built) */
  sameAsLlamaQuantize?: boolean;
  /** llama-perplexity on the same file, text and context (absent when it is not built). */
  llamaPerplexity?: number;
}

export interface QuantModelReport {
  model: string;
  contextSize: number;
  chunks: number;
  rows: QuantRow[];
}

export interface KvRow {
  type: KvCacheType;
  kvCacheBytes: number;
  estimatedBytes: number;
  rssBytes: number;
  perplexity: number;
  kld: { mean: number; p99: number };
  topTokenAgreement: number;
}

export interface QuantizationReport {
  date: string;
  quick: boolean;
  threads: number;
  machine: string;
  evalText: string;
  models: QuantModelReport[];
  kv?: { model: string; contextSize: number; rows: KvRow[] };
  durationSeconds?: number;
}

export interface QuantizationBenchOptions {
  /** Models by name: each F32 or F16; its F16 version is the base of the KL divergence. */
  models: Array<{ name: string; path: string; contextSize: number }>;
  /** The 42M model for the KV table. */
  kvModel?: { name: string; path: string };
  types: string[];
  threads: number;
  quick: boolean;
  evalTextFile: string;
  log: (line: string) => void;
}

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

/** llama.cpp's tools built by `npm run bench:native`, when present. */
function nativeTool(name: "llama-quantize" | "llama-perplexity"): string | undefined {
  const bin = path.join(nativeDir(), "bin", name);
  return existsSync(bin) ? bin : undefined;
}

export async function runQuantizationBench(o: QuantizationBenchOptions): Promise<QuantizationReport> {
  const started = Date.now();
  const workers = new ToolWorkers(createLogger("warn", process.stderr));
  const runners = new ChildProcessRunnerFactory(createLogger("error", process.stderr));
  const text = readFileSync(o.evalTextFile, "utf8");
  const dir = mkdtempSync(path.join(os.tmpdir(), "llmos-bench-quant-"));
  const llamaQuantize = nativeTool("llama-quantize");
  const llamaPerplexity = nativeTool("llama-perplexity");
  if (!llamaQuantize) o.log("llama-quantize not built (npm run bench:native): byte-for-byte comparison skipped");
  const report: QuantizationReport = {
    date: new Date().toISOString(),
    quick: o.quick,
    threads: o.threads,
    machine: `${os.cpus()[0]?.model ?? "?"}, ${os.cpus().length} cores`,
    evalText: path.basename(o.evalTextFile),
    models: [],
  };

  const quantize = async (input: string, type: string, output: string) => {
    const target = quantizeTarget(type)!;
    const t0 = performance.now();
    const r = await workers.run<QuantizeResult>({
      kind: "quantize",
      input,
      output,
      fileType: target.fileType,
      threads: o.threads,
      pure: false,
      allowRequantize: false,
    });
    return { ...r, seconds: (performance.now() - t0) / 1000 };
  };
  const evaluate = (modelPath: string, contextSize: number, basePath?: string, kv?: KvCacheType) =>
    workers.run<EvalResult>({
      kind: "eval",
      modelPath,
      ...(basePath ? { basePath } : {}),
      text,
      contextSize,
      threads: o.threads,
      ...(kv ? { kvCacheType: { k: kv, v: kv } } : {}),
    });
  const speed = async (modelPath: string) => {
    const runner = await runners.start(
      {
        engine: "llama-ffi",
        gpu: false,
        cpuBackendDir: null,
        streamIntervalMs: 20,
        modelPath,
        contextSize: 512,
        slots: 1,
        threads: o.threads,
        gpuLayers: 0,
      },
      "quant-bench",
    );
    try {
      const prompt = (await runner.tokenize(text, { addBos: true })).slice(0, 128);
      const prompts: number[] = [];
      const gens: number[] = [];
      for (let i = 0; i < (o.quick ? 1 : 3); i++) {
        const g = runner.generate({ prompt, maxTokens: 64, sampling: GREEDY, stop: [], stopAtEog: false });
        for await (const c of g) void c;
        const r = await g.result;
        prompts.push(r.promptTokens / (r.promptMs / 1000));
        gens.push((r.completionTokens - 1) / (r.generateMs / 1000));
      }
      return { promptTps: median(prompts), generationTps: median(gens) };
    } finally {
      await runner.stop();
    }
  };

  try {
    for (const m of o.models) {
      o.log(`quantization: ${m.name}`);
      const sourceType = summarizeGguf(await readGguf(m.path)).quantization;
      // The base of the KL divergence: the F16 version (the source itself when it is F16).
      const f16 = sourceType === "F16" ? m.path : path.join(dir, `${m.name}-F16.gguf`);
      if (f16 !== m.path) await quantize(m.path, "F16", f16);
      const rows: QuantRow[] = [];
      let chunks = 0;
      for (const type of ["F16", ...o.types]) {
        const file = type === "F16" ? f16 : path.join(dir, `${m.name}-${type}.gguf`);
        const q = type === "F16" ? undefined : await quantize(m.path, type, file);
        const quality = await evaluate(file, m.contextSize, type === "F16" ? undefined : f16);
        chunks = quality.chunks;
        const row: QuantRow = {
          type,
          bytes: statSync(file).size,
          fallbackTensors: q?.fallbackTensors ?? 0,
          quantizeSeconds: q?.seconds ?? 0,
          ...(await speed(file)),
          perplexity: quality.perplexity,
          ...(quality.kld ? { kld: { mean: quality.kld.mean, p99: quality.kld.p99 } } : {}),
          ...(quality.topTokenAgreement !== undefined ? { topTokenAgreement: quality.topTokenAgreement } : {}),
        };
        if (llamaQuantize && q) {
          const theirs = path.join(dir, `${m.name}-${type}.llama-quantize.gguf`);
          await run(llamaQuantize, [m.path, theirs, type, String(o.threads)], { maxBuffer: 64 << 20 });
          row.sameAsLlamaQuantize = sha256(theirs) === sha256(file);
          rmSync(theirs, { force: true });
        }
        if (llamaPerplexity) row.llamaPerplexity = await nativePerplexity(llamaPerplexity, file, o, m.contextSize);
        o.log(
          `  ${type}: ${(row.bytes / 1e6).toFixed(2)} MB, ppl ${row.perplexity.toFixed(3)}${row.kld ? `, KLD ${row.kld.mean.toFixed(5)}` : ""}` +
            `${row.sameAsLlamaQuantize === undefined ? "" : `, same as llama-quantize: ${row.sameAsLlamaQuantize}`}` +
            `${row.llamaPerplexity === undefined ? "" : `, llama-perplexity ${row.llamaPerplexity.toFixed(3)}`}`,
        );
        rows.push(row);
      }
      report.models.push({ model: m.name, contextSize: m.contextSize, chunks, rows });
    }
    if (o.kvModel) report.kv = await kvTable(o.kvModel, runners, evaluate, o);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  report.durationSeconds = Math.round((Date.now() - started) / 1000);
  return report;
}

/** llama-perplexity's final estimate on a file (`-c ctx`, the same text). */
async function nativePerplexity(bin: string, file: string, o: QuantizationBenchOptions, ctx: number): Promise<number> {
  const { stdout, stderr } = await run(
    bin,
    ["-m", file, "-f", o.evalTextFile, "-c", String(ctx), "-t", String(o.threads)],
    {
      maxBuffer: 64 << 20,
    },
  );
  // The final estimate goes to its log (stderr), which it may not flush before exiting; the running value after
  // the last chunk ("[60]43.4656," on stdout) is the same number.
  const m = /Final estimate: PPL = ([\d.]+)/.exec(stdout + stderr);
  if (m) return Number(m[1]);
  const running = [...stdout.matchAll(/\[(\d+)\]([\d.]+)/g)].at(-1);
  if (!running) throw new Error(`llama-perplexity printed no perplexity for ${file}`);
  return Number(running[2]);
}

/** KV cache types on one model at a 2048-token context: memory and KL divergence against f16. */
async function kvTable(
  model: { name: string; path: string },
  runners: ChildProcessRunnerFactory,
  evaluate: (p: string, ctx: number, base?: string, kv?: KvCacheType) => Promise<EvalResult>,
  o: QuantizationBenchOptions,
): Promise<NonNullable<QuantizationReport["kv"]>> {
  const contextSize = 2048;
  const s = summarizeGguf(await readGguf(model.path));
  const shape = modelShapeOf(s);
  const rows: KvRow[] = [];
  for (const type of ["f16", "q8_0", "q4_0"] as const) {
    o.log(`kv cache ${type}: ${model.name} at ${contextSize}`);
    const estimate = estimateMemory(shape, {
      contextSize,
      slots: 1,
      engine: "llama-ffi",
      kvCacheType: { k: type, v: type },
    });
    const runner = await runners.start(
      {
        engine: "llama-ffi",
        gpu: false,
        cpuBackendDir: null,
        streamIntervalMs: 20,
        modelPath: model.path,
        contextSize,
        slots: 1,
        threads: o.threads,
        gpuLayers: 0,
        kvCacheType: { k: type, v: type },
      },
      "kv-bench",
    );
    let rssBytes = 0;
    try {
      const g = runner.generate({
        prompt: "Once upon a time",
        maxTokens: 16,
        sampling: GREEDY,
        stop: [],
        stopAtEog: false,
      });
      for await (const c of g) void c;
      await g.result;
      rssBytes = (await runner.stats()).rssBytes;
    } finally {
      await runner.stop();
    }
    const q = await evaluate(model.path, contextSize, model.path, type);
    rows.push({
      type,
      kvCacheBytes: estimate.kvCache,
      estimatedBytes: estimate.total,
      rssBytes,
      perplexity: q.perplexity,
      kld: { mean: q.kld!.mean, p99: q.kld!.p99 },
      topTokenAgreement: q.topTokenAgreement!,
    });
  }
  return { model: model.name, contextSize, rows };
}
