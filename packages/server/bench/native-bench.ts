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
import { CPU_BACKEND_MANIFEST } from "../src/engine/llama-ffi/cpu-backend.js";
import { newAgent, request } from "./http-client.js";

const run = promisify(execFile);

/**
 * The CPU backend built on this machine that llmos uses in the benchmark: LLMOS_CPU_BACKEND's folder, else
 * ~/.cache/llmos/ggml-cpu (made by `npm run bench:native`) when present; null: the shipped one only.
 */
export function builtHereCpuBackendDir(): string | null {
  const env = process.env.LLMOS_CPU_BACKEND;
  if (env === "shipped") return null;
  const dir = env && env !== "auto" ? env : path.join(os.homedir(), ".cache", "llmos", "ggml-cpu");
  return existsSync(path.join(dir, CPU_BACKEND_MANIFEST)) ? dir : null;
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
export async function llamaBenchOnce(
  bin: string,
  model: string,
  threads: number,
  promptTokens: number,
  genTokens: number,
): Promise<{ promptTokensPerSecond: number; generationTokensPerSecond: number }> {
  const { stdout } = await run(
    bin,
    ["-m", model, "-t", String(threads), "-p", String(promptTokens), "-n", String(genTokens), "-r", "1", "-o", "json"],
    { maxBuffer: 16 << 20 },
  );
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

/**
 * Start the llama-server `bin` with `parallel` slots of 512 tokens and wait until it is healthy (one warm-up
 * request). `stream`: the requests stream their tokens (server-sent events, read to the end), as streaming
 * clients do; otherwise each answers once at the end, and the server does no work per token for its clients.
 */
export async function startLlamaServer(
  bin: string,
  model: string,
  threads: number,
  parallel: number,
  port = 18931,
  stream = false,
): Promise<LlamaServer> {
  const child = spawn(
    bin,
    [
      "-m",
      model,
      "-t",
      String(threads),
      "--parallel",
      String(parallel),
      "-c",
      String(512 * parallel),
      "--port",
      String(port),
      "--host",
      "127.0.0.1",
      "--no-webui",
    ],
    { stdio: "ignore" },
  );
  const url = `http://127.0.0.1:${port}`;
  const agent = newAgent();
  const once = async (tokens: number): Promise<number> => {
    const r = await request(
      `${url}/completion`,
      { prompt: "Once upon a time", n_predict: tokens, temperature: 0, ignore_eos: true, cache_prompt: false, stream },
      "POST",
      agent,
    );
    if (!stream) return (await r.json<{ tokens_predicted: number }>()).tokens_predicted;
    // The event with `stop: true` carries the totals. Read up to it: llama-server may close the connection
    // without ending the chunked body.
    let buf = "";
    for await (const chunk of r.body) {
      buf += chunk.toString();
      let i: number;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const event = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (!event.startsWith("data: ")) continue;
        const data = JSON.parse(event.slice(6)) as { stop?: boolean; tokens_predicted: number };
        if (data.stop) return data.tokens_predicted;
      }
    }
    throw new Error("llama-server's stream ended without its last event");
  };
  try {
    for (let i = 0; i < 600; i++) {
      try {
        const health = await request(`${url}/health`, undefined, "GET", agent);
        await health.text();
        if (health.ok) break;
      } catch {
        /* not up yet */
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await once(8);
  } catch (err) {
    agent.destroy();
    child.kill("SIGKILL");
    throw err;
  }
  return {
    async aggregate(tokens) {
      const t = performance.now();
      const counts = await Promise.all(Array.from({ length: parallel }, () => once(tokens)));
      return counts.reduce((a, b) => a + b, 0) / ((performance.now() - t) / 1000);
    },
    close: () => {
      agent.destroy();
      child.kill("SIGKILL");
    },
  };
}

/**
 * llama-server with `parallel` slots of `ctxPerSlot` tokens each, as a chat server runs (its prompt cache on by
 * default), answering at its base URL; waits until healthy.
 */
export async function startLlamaServerSlots(
  bin: string,
  model: string,
  opts: { threads: number; parallel: number; ctxPerSlot: number; port: number },
): Promise<{ url: string; close(): void }> {
  const child = spawn(
    bin,
    [
      ...["-m", model, "-t", String(opts.threads), "--parallel", String(opts.parallel)],
      ...["-c", String(opts.ctxPerSlot * opts.parallel), "--port", String(opts.port), "--host", "127.0.0.1"],
      "--no-webui",
    ],
    { stdio: "ignore" },
  );
  const url = `http://127.0.0.1:${opts.port}`;
  const agent = newAgent();
  try {
    for (let i = 0; ; i++) {
      if (i === 600 || child.exitCode !== null) throw new Error(`llama-server did not start (${bin})`);
      try {
        const health = await request(`${url}/health`, undefined, "GET", agent);
        await health.text();
        if (health.ok) break;
      } catch {
        /* not up yet */
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  } finally {
    agent.destroy();
  }
  return { url, close: () => void child.kill("SIGKILL") };
}
