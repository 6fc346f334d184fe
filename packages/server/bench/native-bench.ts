/**
 * The native reference: llama.cpp's own llama-bench and llama-server built from the source node-llama-cpp ships
 * (`npm run bench:native`), run on the same models and threads.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { spread, type Spread } from "./stats.js";

const run = promisify(execFile);

export function nativeDir(): string {
  return process.env.LLMOS_NATIVE_DIR ?? path.join(os.homedir(), ".cache", "llmos", "llama-native");
}

export function nativeAvailable(): boolean {
  return existsSync(path.join(nativeDir(), "bin", "llama-bench"));
}

/** llama-bench: prompt processing and generation tokens/s (its own repetitions), as medians over `reps` runs. */
export async function llamaBench(model: string, threads: number, promptTokens: number, genTokens: number, reps: number): Promise<{ promptTps: Spread; generationTps: Spread }> {
  const bin = path.join(nativeDir(), "bin", "llama-bench");
  const pp: number[] = [];
  const tg: number[] = [];
  for (let i = 0; i < reps; i++) {
    const { stdout } = await run(bin, ["-m", model, "-t", String(threads), "-p", String(promptTokens), "-n", String(genTokens), "-r", "1", "-o", "json"], { maxBuffer: 16 << 20 });
    const rows = JSON.parse(stdout) as Array<{ n_prompt: number; n_gen: number; avg_ts: number }>;
    for (const r of rows) (r.n_gen > 0 ? tg : pp).push(r.avg_ts);
  }
  return { promptTps: spread(pp), generationTps: spread(tg) };
}

/** llama-server --parallel N: aggregate generated tokens/s of N concurrent /completion requests. */
export async function llamaServerAggregate(model: string, threads: number, parallel: number, tokens: number, reps: number, port = 18931): Promise<Spread> {
  const bin = path.join(nativeDir(), "bin", "llama-server");
  const child = spawn(bin, ["-m", model, "-t", String(threads), "--parallel", String(parallel), "-c", String(512 * parallel), "--port", String(port), "--host", "127.0.0.1", "--no-webui"], { stdio: "ignore" });
  try {
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 600; i++) {
      try {
        if ((await fetch(`${url}/health`)).ok) break;
      } catch {
        /* not up yet */
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const once = () =>
      fetch(`${url}/completion`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "Once upon a time", n_predict: tokens, temperature: 0, ignore_eos: true, cache_prompt: false }) }).then(
        async (r) => ((await r.json()) as { tokens_predicted: number }).tokens_predicted,
      );
    await once();
    const samples: number[] = [];
    for (let i = 0; i < reps; i++) {
      const t = performance.now();
      const counts = await Promise.all(Array.from({ length: parallel }, once));
      samples.push(counts.reduce((a, b) => a + b, 0) / ((performance.now() - t) / 1000));
    }
    return spread(samples);
  } finally {
    child.kill("SIGKILL");
  }
}
