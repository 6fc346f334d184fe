/**
 * Measures what the simulator needs of each model on this machine, through a real daemon: the memory it reserves
 * (the scheduler's estimate), the time a cold request waits for its load (cold minus warm time to first token),
 * and its prompt and generation speed as a warm request sees them over HTTP.
 */
import { median } from "../stats.js";
import type { BenchDaemon } from "./bench-daemon.js";
import { promptOf } from "./replayer.js";
import type { SimModel } from "./sim-runtime.js";

const PROMPT_TOKENS = 48;
const OUTPUT_TOKENS = 16;

export async function calibrate(b: BenchDaemon, names: readonly string[], rounds: number): Promise<SimModel[]> {
  const url = b.daemon.url;
  const out: SimModel[] = [];
  for (const name of names) {
    const cold: number[] = [];
    const warm: number[] = [];
    const gen: number[] = [];
    let bytes = 0;
    for (let i = 0; i < rounds; i++) {
      await post(url, `/api/models/${encodeURIComponent(name)}/unload`);
      const c = await timed(url, name);
      const w = await timed(url, name);
      cold.push(c.ttftMs);
      warm.push(w.ttftMs);
      gen.push(((OUTPUT_TOKENS - 1) / Math.max(1, w.totalMs - w.ttftMs)) * 1000);
      const ps = (await (await fetch(`${url}/api/ps`)).json()) as { models: Array<{ name: string; size: number }> };
      bytes = Math.max(bytes, ps.models.find((m) => m.name === `${name}:latest`)?.size ?? 0);
    }
    await post(url, `/api/models/${encodeURIComponent(name)}/unload`);
    out.push({
      name,
      bytes,
      loadMs: Math.max(1, median(cold) - median(warm)),
      promptTokensPerSecond: (PROMPT_TOKENS / Math.max(1, median(warm))) * 1000,
      tokensPerSecond: median(gen),
    });
  }
  return out;
}

async function post(url: string, route: string): Promise<void> {
  const res = await fetch(url + route, { method: "POST" });
  await res.text();
}

async function timed(url: string, model: string): Promise<{ ttftMs: number; totalMs: number }> {
  const sent = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model,
      prompt: promptOf(PROMPT_TOKENS),
      max_tokens: OUTPUT_TOKENS,
      temperature: 0,
      // Exactly max_tokens, as the simulator assumes (random-weight models may emit an end token early).
      ignore_eos: true,
      stream: true,
    }),
  });
  if (!res.ok || !res.body) throw new Error(`calibration request for ${model}: HTTP ${res.status}`);
  let first = NaN;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    if (Number.isNaN(first) && Buffer.from(chunk).toString().includes("data:")) first = performance.now() - sent;
  }
  return { ttftMs: first, totalMs: performance.now() - sent };
}
