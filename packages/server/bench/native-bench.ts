/**
 * The native references: llama.cpp's own llama-bench and llama-server built from the source node-llama-cpp ships
 * (`npm run bench:native`), and the same llama-bench linked against node-llama-cpp's prebuilt libraries (the ones
 * llmos loads), run on the same models and threads.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * The CPU backend built on this machine that llmos uses in the benchmark: LLMOS_CPU_BACKEND's folder, else
 * ~/.cache/llmos/ggml-cpu (made by `npm run bench:native`) when present; null: the shipped one only.
 */
export function builtHereCpuBackendDir(): string | null {
  const env = process.env.LLMOS_CPU_BACKEND;
  if (env === "shipped") return null;
  const dir = env && env !== "auto" ? env : path.join(os.homedir(), ".cache", "llmos", "ggml-cpu");
  return existsSync(path.join(dir, "llmos-cpu-backend.json")) ? dir : null;
}

export function nativeDir(): string {
  return process.env.LLMOS_NATIVE_DIR ?? path.join(os.homedir(), ".cache", "llmos", "llama-native");
}

/** The binaries of a program present: `native` (built here with -march=native) and `prebuilt` (linked against node-llama-cpp's libraries). */
export function nativeBinaries(program: "llama-bench" | "llama-server"): { native?: string; prebuilt?: string } {
  const native = path.join(nativeDir(), "bin", program);
  const prebuilt = path.join(nativeDir(), "prebuilt", program);
  return { ...(existsSync(native) ? { native } : {}), ...(existsSync(prebuilt) ? { prebuilt } : {}) };
}

/** One llama-bench run (one repetition): prompt processing and generation tokens/s. */
export async function llamaBenchOnce(bin: string, model: string, threads: number, promptTokens: number, genTokens: number): Promise<{ promptTokensPerSecond: number; generationTokensPerSecond: number }> {
  const { stdout } = await run(bin, ["-m", model, "-t", String(threads), "-p", String(promptTokens), "-n", String(genTokens), "-r", "1", "-o", "json"], { maxBuffer: 16 << 20 });
  const rows = JSON.parse(stdout) as Array<{ n_prompt: number; n_gen: number; avg_ts: number }>;
  return {
    promptTokensPerSecond: rows.find((r) => r.n_gen === 0)?.avg_ts ?? NaN,
    generationTokensPerSecond: rows.find((r) => r.n_gen > 0)?.avg_ts ?? NaN,
  };
}

/** A running llama-server --parallel N. */
export interface LlamaServer {
  /** N concurrent /completion requests of `tokens` tokens: aggregate generated tokens/s over wall time. */
  aggregate(tokens: number): Promise<number>;
  close(): void;
}

/** Start the llama-server `bin` with `parallel` slots of 512 tokens and wait until it is healthy (one warm-up request). */
export async function startLlamaServer(bin: string, model: string, threads: number, parallel: number, port = 18931): Promise<LlamaServer> {
  const child = spawn(bin, ["-m", model, "-t", String(threads), "--parallel", String(parallel), "-c", String(512 * parallel), "--port", String(port), "--host", "127.0.0.1", "--no-webui"], { stdio: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  const once = (tokens: number) =>
    fetch(`${url}/completion`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "Once upon a time", n_predict: tokens, temperature: 0, ignore_eos: true, cache_prompt: false }) }).then(
      async (r) => ((await r.json()) as { tokens_predicted: number }).tokens_predicted,
    );
  try {
    for (let i = 0; i < 600; i++) {
      try {
        if ((await fetch(`${url}/health`)).ok) break;
      } catch {
        /* not up yet */
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await once(8);
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  return {
    async aggregate(tokens) {
      const t = performance.now();
      const counts = await Promise.all(Array.from({ length: parallel }, () => once(tokens)));
      return counts.reduce((a, b) => a + b, 0) / ((performance.now() - t) / 1000);
    },
    close: () => void child.kill("SIGKILL"),
  };
}
