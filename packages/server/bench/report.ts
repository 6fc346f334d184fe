import { writeFileSync } from "node:fs";
import type { EngineBenchResult } from "./engine-bench.js";
import { fmt, fmtSpread, ratio, type Spread } from "./stats.js";

export interface ModelBench {
  path: string;
  engine: EngineBenchResult;
  /** The engine alone is measured in the same rounds as each HTTP run (engineGenerationTps). */
  http?: { single: { ttftMs: Spread; generationTps: Spread; engineGenerationTps?: Spread } };
  load?: { model: string; loadMs: Spread; estimatedBytes: number; rssBytes: number; estimate: unknown };
}

export interface BenchReport {
  date: string;
  quick: boolean;
  threads: number;
  tokens: number;
  repetitions: number;
  machine: { cpu: string; cores: number; memoryBytes: number; node: string; platform: string };
  native: string | null;
  /** llama-bench linked against node-llama-cpp's prebuilt libraries was measured too. */
  prebuiltReference?: boolean;
  models: Record<string, ModelBench>;
  concurrency?: { model: string; levels: Array<{ clients: number; concurrent: Spread; sequential: Spread }> };
  controlPlane?: { model: string; requests: number; clients: number; requestsPerSecond: number; p50Ms: number; p99Ms: number };
  modelSwitch?: { model: string; ms: Spread };
  durationSeconds?: number;
}

const MiB = 1024 * 1024;

/** Writes docs/performance.md: machine, tables of ratios measured in this run, the raw JSON. */
export function writeReport(file: string, r: BenchReport): void {
  const L: string[] = [];
  const names = Object.keys(r.models);
  L.push("# Performance", "");
  L.push(`Measured by \`npm run bench${r.quick ? " -- --quick" : ""}\` on ${r.date.slice(0, 10)}: ${r.machine.cpu}, ${r.machine.cores} cores, ${Math.round(r.machine.memoryBytes / 1024 ** 3)} GiB, Node ${r.machine.node}, ${r.machine.platform}.`);
  L.push(`Threads: ${r.threads}. Generation: ${r.tokens} tokens, greedy. Each figure is the median of ${r.repetitions} repetitions with its range in parentheses; every ratio compares numbers measured in this same run (the machine is shared and noisy).`);
  L.push(`Native reference: ${r.native ? `llama.cpp's own llama-bench / llama-server built from the source node-llama-cpp ships (${r.native})` : "not built in this run (`npm run bench:native`)"}.`, "");

  L.push("## 1. Engine: generation and prompt tokens/s, single stream", "");
  L.push("All columns measured in the same rounds. *llama-bench, prebuilt libs*: llama.cpp's llama-bench linked against the libllama/libggml that node-llama-cpp ships and llmos loads; *native*: llama-bench built here with `-march=native`.", "");
  L.push("| model | node-llama-cpp | llmos llama-ffi (sync) | llmos llama-ffi (async) | llama-bench, prebuilt libs | llama-bench, native | ffi / node-llama-cpp | ffi / prebuilt | ffi / native |");
  L.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  const refs = (n: string) => r.models[n]!.engine.single.references ?? {};
  for (const n of names) {
    const m = r.models[n]!;
    const nlc = m.engine.single.nodeLlamaCpp?.generationTokensPerSecond;
    const ffi = m.engine.single.ffiSync.generationTokensPerSecond;
    const ffiA = m.engine.single.ffiAsync.generationTokensPerSecond;
    const pre = refs(n)["prebuilt"]?.generationTps;
    const nat = refs(n)["native"]?.generationTps;
    L.push(`| ${n} | ${fmt(nlc)} | ${fmt(ffi)} | ${fmt(ffiA)} | ${fmtSpread(pre)} | ${fmtSpread(nat)} | ${ratio(ffi, nlc)} | ${ratio(ffi, pre?.median)} | ${ratio(ffi, nat?.median)} |`);
  }
  L.push("", "Prompt processing (128-token prompt), tokens/s:", "");
  L.push("| model | node-llama-cpp | llmos llama-ffi | llama-bench, prebuilt libs | llama-bench, native | ffi / prebuilt | ffi / native | prebuilt / native |", "| --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const n of names) {
    const m = r.models[n]!;
    const ffi = m.engine.single.ffiSync.promptTokensPerSecond;
    const pre = refs(n)["prebuilt"]?.promptTps;
    const nat = refs(n)["native"]?.promptTps;
    L.push(`| ${n} | ${fmt(m.engine.single.nodeLlamaCpp?.promptTokensPerSecond)} | ${fmt(ffi)} | ${fmtSpread(pre)} | ${fmtSpread(nat)} | ${ratio(ffi, pre?.median)} | ${ratio(ffi, nat?.median)} | ${ratio(pre?.median, nat?.median)} |`);
  }

  L.push("", "## 2. End to end: llmos over HTTP (OpenAI streaming endpoint) vs its engine alone", "");
  L.push("Each HTTP run is paired with a run of the engine alone (llama-ffi in the benchmark process, same model and prompt) just before it. Streaming uses the default stream interval (20 ms: tokens that come faster are sent together). TTFT overhead = time to the first streamed token over HTTP minus what the engine alone needs for the same 5-token prompt (5 / prompt tokens/s + one generation step).", "");
  L.push("| model | HTTP generation tokens/s | engine alone, same rounds | HTTP / engine | HTTP / node-llama-cpp direct | TTFT over HTTP, ms | TTFT overhead, ms |", "| --- | --- | --- | --- | --- | --- | --- |");
  for (const n of names) {
    const m = r.models[n]!;
    const h = m.http?.single;
    const e = m.engine.single.ffiSync;
    const engineTtft = 1000 * (5 / e.promptTokensPerSecond + 1 / e.generationTokensPerSecond);
    L.push(`| ${n} | ${fmtSpread(h?.generationTps)} | ${fmtSpread(h?.engineGenerationTps)} | ${ratio(h?.generationTps.median, h?.engineGenerationTps?.median)} | ${ratio(h?.generationTps.median, m.engine.single.nodeLlamaCpp?.generationTokensPerSecond)} | ${fmtSpread(h?.ttftMs)} | ${h ? fmt(h.ttftMs.median - engineTtft) : "n/a"} |`);
  }

  L.push("", "## 3. Concurrency: aggregate generated tokens/s", "");
  L.push("Engine (llama-ffi, sequences decoded together in one batch, in process):", "");
  L.push("| model | " + [1, 2, 4, 8].map((c) => `${c} seq`).join(" | ") + " | 4 seq / 1 seq |");
  L.push("| --- | --- | --- | --- | --- | --- |");
  for (const n of names) {
    const m = r.models[n]!;
    const agg = (c: number) => m.engine.aggregate.find((a) => a.concurrency === c && a.decodeMode === "sync")?.tokensPerSecond;
    L.push(`| ${n} | ${[1, 2, 4, 8].map((c) => fmt(agg(c))).join(" | ")} | ${ratio(agg(4), agg(1))} |`);
  }
  const serverRows = names.flatMap((n) => (r.models[n]!.engine.aggregateReferences ?? []).map((a) => ({ n, a })));
  if (serverRows.length > 0) {
    L.push("", "Against llama.cpp's own server, measured in the same rounds (4 slots of 512 tokens each on both sides; llama-server over HTTP, llmos's engine in process):", "");
    L.push("| model | sequences | llmos llama-ffi | native llama-server --parallel | llmos / llama-server |", "| --- | --- | --- | --- | --- |");
    for (const { n, a } of serverRows) L.push(`| ${n} | ${a.concurrency} | ${fmtSpread(a.ffiSameRounds)} | ${fmtSpread(a.tokensPerSecond)} | ${ratio(a.ffiSameRounds.median, a.tokensPerSecond.median)} |`);
  }
  if (r.concurrency) {
    L.push("", `Over HTTP (${r.concurrency.model}, ${r.tokens} tokens per request): N clients at once vs the same N requests one by one:`, "");
    L.push("| clients | concurrent tokens/s | sequential tokens/s | concurrent / sequential |", "| --- | --- | --- | --- |");
    for (const l of r.concurrency.levels) L.push(`| ${l.clients} | ${fmtSpread(l.concurrent)} | ${fmtSpread(l.sequential)} | ${ratio(l.concurrent.median, l.sequential.median)} |`);
  }

  if (r.controlPlane) {
    const c = r.controlPlane;
    L.push("", "## 4. Control plane", "", `${c.requests} one-token completions on a loaded ${c.model}, ${c.clients} clients at once: **${fmt(c.requestsPerSecond)} requests/s**, p50 ${fmt(c.p50Ms)} ms, p99 ${fmt(c.p99Ms)} ms.`);
  }

  L.push("", "## 5. Load: cold load time and memory (estimate vs measured)", "");
  L.push("| model | cold load, ms | estimated | measured RSS | estimate / RSS |", "| --- | --- | --- | --- | --- |");
  for (const n of names) {
    const l = r.models[n]!.load;
    if (l) L.push(`| ${n} | ${fmtSpread(l.loadMs, 0)} | ${fmt(l.estimatedBytes / MiB)} MiB | ${fmt(l.rssBytes / MiB)} MiB | ${ratio(l.estimatedBytes, l.rssBytes)} |`);
  }
  if (r.modelSwitch) L.push("", `Model switch (evict one ${r.modelSwitch.model} copy, load the other, answer one token; the budget holds one): ${fmtSpread(r.modelSwitch.ms, 0)} ms.`);

  L.push("", "## Targets (issue \"Performance\"), checked against this run", "");
  L.push("| target | measured | met |", "| --- | --- | --- |");
  const m110 = r.models["llama-110m"];
  const ffi110 = m110?.engine.single.ffiSync.generationTokensPerSecond;
  const nat110 = m110?.engine.single.references?.["native"]?.generationTps.median;
  const srv = r.models["llama-42m"]?.engine.aggregateReferences?.find((a) => a.concurrency === 4);
  const agg42 = srv?.ffiSameRounds.median;
  const srv42 = srv?.tokensPerSecond.median;
  const verdict = (ok: boolean | undefined) => (ok === undefined ? "n/a" : ok ? "yes" : "**no**");
  const rt = (a?: number, b?: number) => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
  const single = rt(ffi110, nat110);
  L.push(`| llmos engine single-stream >= 0.95x native, 110M | ${single?.toFixed(2) ?? "n/a"}x | ${verdict(single === undefined ? undefined : single >= 0.95)} |`);
  const par = rt(agg42, srv42);
  L.push(`| 4 streams >= llama-server --parallel 4, 42M | ${par?.toFixed(2) ?? "n/a"}x | ${verdict(par === undefined ? undefined : par >= 1)} |`);
  for (const n of names) {
    const h = rt(r.models[n]!.http?.single.generationTps.median, r.models[n]!.http?.single.engineGenerationTps?.median);
    L.push(`| HTTP >= 0.95x its own engine, ${n} | ${h?.toFixed(2) ?? "n/a"}x | ${verdict(h === undefined ? undefined : h >= 0.95)} |`);
  }
  L.push("", "## Options measured", "");
  L.push("- **llama-node** (node-llama-cpp): complete and convenient, but its per-token JS loop costs throughput (column node-llama-cpp above). Kept as the `LLMOS_ENGINE=llama-node` engine and for GPU detection, JSON-schema grammars and GGUF insights.");
  L.push("- **llama-ffi, sync decode** (default): libllama through koffi, one synchronous `llama_decode` per step with a persistent ggml threadpool, `setImmediate` between steps so IPC (cancel) is heard.");
  L.push("- **llama-ffi, async decode**: the same with koffi's async calls on a worker thread; measured side by side above.");
  L.push("- Rejected before this suite existed (measured in experiments, see ../shared/docs/engineering.md): llama-ffi without a persistent ggml threadpool (each `llama_decode` starts and joins threads: 8 to 116 tokens/s, wildly unstable); runners in worker threads (terminating one mid-generation aborts the whole process); node-llama-cpp's default thread count on 2 cores (150x slower).");
  L.push("- Where the time goes on 2 cores: the runner's 2 decode threads use both cores, so every bit of work in the daemon process (IPC, SSE, HTTP) takes time from decoding; small models (stories260K, 0.3 ms per token) lose the most to this per-token cost, the 110M model the least.");
  L.push("- Open question, prompt processing: a lone 128-token `llama_decode` of the 110M model takes about twice as long through llama-ffi (node-llama-cpp's prebuilt CPU variant libraries) as in llama-bench built here with `-march=native`, OpenMP and LLAMAFILE; the context size does not matter. Next step: link llama-bench against the prebuilt libraries to tell library speed from ours.");
  L.push("", "## Raw results", "", "```json", JSON.stringify(r, null, 2), "```", "");
  writeFileSync(file, L.join("\n"));
}
