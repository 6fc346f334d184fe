/**
 * Benchmarks of llmos over HTTP, against a daemon started in this process (runners are real child processes):
 * single-stream generation through the OpenAI streaming endpoint, aggregate throughput at several client counts
 * vs the same requests one by one, control-plane latency, cold load time and RSS, and model switch time.
 */
import type { Daemon } from "../src/daemon.js";
import { request } from "./http-client.js";
import { median, percentile, settle, spread, type Spread } from "./stats.js";

export interface StreamRun {
  ttftMs: number;
  /**
   * Generated tokens per second from the first to the last streamed token. Biased upwards when tokens come
   * faster than the stream interval (the first chunk with text may already hold several tokens).
   */
  generationTps: number;
  /** Generated tokens per second of the whole request: from sending it to the end of the stream. */
  requestTps: number;
  tokens: number;
}

const post = (url: string, body: unknown) => request(url, body);

/** One streamed completion; every SSE chunk is one token for these models (checked against usage). */
export async function streamOnce(base: string, model: string, prompt: string, tokens: number): Promise<StreamRun> {
  const started = performance.now();
  const res = await post(`${base}/v1/completions`, {
    model,
    prompt,
    max_tokens: tokens,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
    ignore_eos: true,
    // Sections 2-3 measure a request's whole path; the prompt cache is measured in "real workloads".
    cache_prompt: false,
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const decoder = new TextDecoder();
  let first = 0;
  let last = 0;
  let buf = "";
  let completion = 0;
  for await (const value of res.body) {
    buf += decoder.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) !== -1) {
      const data = buf.slice(6, i);
      buf = buf.slice(i + 2);
      if (data === "[DONE]") continue;
      const json = JSON.parse(data);
      if (json.usage) completion = json.usage.completion_tokens;
      if (json.choices?.[0]?.text) {
        const now = performance.now();
        if (!first) first = now;
        last = now;
      }
    }
  }
  const genMs = last - first;
  const totalMs = performance.now() - started;
  return {
    ttftMs: first - started,
    generationTps: genMs > 0 ? (completion - 1) / (genMs / 1000) : NaN,
    requestTps: completion / (totalMs / 1000),
    tokens: completion,
  };
}

/**
 * Single-stream generation over HTTP, `reps` times; with `engineOnce` (the same generation on the engine alone, in
 * this process), each HTTP run is paired with an engine run, so their ratio compares numbers of the same moment.
 */
export async function singleStream(
  d: Daemon,
  model: string,
  prompt: string,
  tokens: number,
  reps: number,
  engineOnce?: () => Promise<{ generationTps: number; requestTps: number }>,
) {
  await streamOnce(d.url, model, prompt, 4); // warm: load the model
  await engineOnce?.();
  const runs: StreamRun[] = [];
  const engine: Array<{ generationTps: number; requestTps: number }> = [];
  for (let i = 0; i < reps; i++) {
    if (engineOnce) {
      await settle();
      engine.push(await engineOnce());
    }
    await settle();
    runs.push(await streamOnce(d.url, model, prompt, tokens));
  }
  return {
    ttftMs: spread(runs.map((r) => r.ttftMs)),
    generationTps: spread(runs.map((r) => r.generationTps)),
    requestTps: spread(runs.map((r) => r.requestTps)),
    ...(engineOnce
      ? {
          engineGenerationTps: spread(engine.map((e) => e.generationTps)),
          engineRequestTps: spread(engine.map((e) => e.requestTps)),
        }
      : {}),
  };
}

/** Aggregate generated tokens/s with `clients` concurrent requests, and the same requests one by one. */
export async function concurrency(
  d: Daemon,
  model: string,
  prompt: string,
  tokens: number,
  clients: number,
  reps: number,
) {
  const run = async (parallel: boolean) => {
    const started = performance.now();
    let generated = 0;
    const one = async () => {
      const r = await post(`${d.url}/v1/completions`, {
        model,
        prompt,
        max_tokens: tokens,
        temperature: 0,
        cache_prompt: false,
      });
      const json = (await r.json()) as { usage: { completion_tokens: number } };
      generated += json.usage.completion_tokens;
    };
    if (parallel) await Promise.all(Array.from({ length: clients }, one));
    else for (let i = 0; i < clients; i++) await one();
    return generated / ((performance.now() - started) / 1000);
  };
  const concurrent: number[] = [];
  const sequential: number[] = [];
  // The load profile before this leaves the model unloaded: load it first, so no run includes a load.
  await (await post(`${d.url}/v1/completions`, { model, prompt, max_tokens: 1 })).text();
  for (let i = 0; i < reps; i++) {
    concurrent.push(await run(true));
    sequential.push(await run(false));
  }
  return { clients, concurrent: spread(concurrent), sequential: spread(sequential) };
}

/** Requests/s and latency percentiles of 1-token generations on a loaded tiny model. */
export async function controlPlane(d: Daemon, model: string, requests: number, clients: number) {
  await post(`${d.url}/v1/completions`, { model, prompt: "Hi", max_tokens: 1 });
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < requests) {
        next++;
        const t = performance.now();
        const r = await post(`${d.url}/v1/completions`, { model, prompt: "Hi", max_tokens: 1 });
        await r.text();
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return {
    requests,
    clients,
    requestsPerSecond: requests / seconds,
    p50Ms: median(latencies),
    p99Ms: percentile(latencies, 99),
  };
}

/** Cold load time and memory (estimate vs measured RSS) per model; each model unloaded before and after. */
export async function loadProfile(
  d: Daemon,
  model: string,
  reps: number,
): Promise<{ model: string; loadMs: Spread; estimatedBytes: number; rssBytes: number; estimate: unknown }> {
  const times: number[] = [];
  let last: any;
  for (let i = 0; i < reps; i++) {
    await post(`${d.url}/api/models/${encodeURIComponent(model)}/unload`, {});
    const t = performance.now();
    const r = await post(`${d.url}/api/models/${encodeURIComponent(model)}/load`, {});
    if (!r.ok) throw new Error(`load ${model}: ${r.status} ${await r.text()}`);
    times.push(performance.now() - t);
    last = await r.json();
  }
  // RSS after one generation (weights paged in).
  await post(`${d.url}/v1/completions`, { model, prompt: "Once upon a time", max_tokens: 8 });
  const ps = await (await request(`${d.url}/api/ps`, undefined, "GET")).json<{ models: any[] }>();
  const entry = ps.models.find((m) => m.name === last.name) ?? last;
  await post(`${d.url}/api/models/${encodeURIComponent(model)}/unload`, {});
  return {
    model,
    loadMs: spread(times),
    estimatedBytes: entry.memory.estimatedBytes,
    rssBytes: entry.memory.rssBytes,
    estimate: entry.memory.estimate,
  };
}

/** Time for a request to a model that must evict another first (budget fits one), vs a warm request. */
export async function modelSwitch(d: Daemon, a: string, b: string, reps: number) {
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    for (const m of i % 2 ? [a, b] : [b, a]) {
      const t = performance.now();
      const r = await post(`${d.url}/v1/completions`, { model: m, prompt: "Hi", max_tokens: 1 });
      if (!r.ok) throw new Error(`switch to ${m}: ${r.status} ${await r.text()}`);
      await r.text();
      times.push(performance.now() - t);
    }
  }
  return spread(times);
}
