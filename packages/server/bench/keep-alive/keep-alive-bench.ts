/**
 * The keep-alive section of `npm run bench` (alone: `npm run bench:keep-alive`): six models (stories260K, pinned,
 * and five copies of the 42M Q8_0 model with different seeds) under a memory budget that holds the pinned one and
 * three others. It
 *   1. generates the mixed and the Poisson traces, checks the same seed gives the same bytes, and validates a
 *      100-day version of each (every parameter within 10%);
 *   2. calibrates the simulator on this machine (each model's reservation, load wait and speeds);
 *   3. replays a learning trace (another seed) under `histogram`, restarts the daemon on its home and checks the
 *      usage model came back;
 *   4. replays the measured traces in real time under each policy (three rounds), the learned ones from a copy of
 *      that store;
 *   5. simulates the same traces (and a whole day) with the same policies and learned store, and the learning trace.
 * Time is compressed 60x (a trace second stands for a minute; the fixed keep-alive of 5 minutes is 5 s).
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ensureSynthModels, standardShape } from "@llmos/gguf";
import type { KeepPolicyName } from "@llmos/protocol";
import { MemoryUsageRepository, SqliteUsageRepository } from "../../src/usage-store/index.js";
import { percentile } from "../stats.js";
import { copyDatabase, metricByLabel, startBenchDaemon, type BenchModelFile } from "./bench-daemon.js";
import { calibrate } from "./calibrate.js";
import { replay } from "./replayer.js";
import type { SimModel } from "./sim-runtime.js";
import { EventCounter, simulate } from "./simulator.js";
import { serializeTrace, type Trace } from "./trace-format.js";
import { generateTrace } from "./trace-generator.js";
import { mixedSpec, poissonSpec, scaledKeepAliveMs } from "./trace-presets.js";
import { validateTrace, type MeasuredParameter } from "./trace-validator.js";

export const BENCH_MODELS = ["ka-stories", "ka-m1", "ka-m2", "ka-m3", "ka-m4", "ka-m5"] as const;
const PINNED = ["ka-stories"];
const PARALLEL = 4;
const MiB = 1024 * 1024;

export type TraceKind = "mixed" | "poisson";

/** One run of a policy on a trace, replayed or simulated. */
export interface PolicyRun {
  trace: TraceKind;
  policy: KeepPolicyName;
  kind: "replay" | "simulated";
  requests: number;
  coldStarts: number;
  /** Cold starts whose load started a runner of its own (found none started ahead; absent in older reports). */
  coldOwnRunner?: number;
  ttftP50Ms: number;
  ttftP99Ms: number;
  /** Idle memory, GiB-seconds. */
  idleGiBs: number;
  prewarm: { used: number; wasted: number; failed: number };
  loads: number;
  evictions: number;
  violations: string[];
  failed: number;
}

/** Cold starts and time to first token of one run. */
export interface RunStats {
  coldStarts: number;
  ttftP50Ms: number;
  ttftP99Ms: number;
}

export interface KeepAliveReport {
  date: string;
  quick: boolean;
  durationMs: number;
  timeScale: number;
  keepAliveMs: number;
  budgetBytes: number;
  models: SimModel[];
  validation: Record<TraceKind, { requests: number; parameters: MeasuredParameter[] }>;
  deterministic: boolean;
  restart: { models: number; gapsBefore: number; learnedAfterRestart: string | null };
  runs: PolicyRun[];
  simulatedDay: { requests: number; wallMs: number; simulatedMs: number };
  /** The mixed learning replay and the simulator on the same trace (absent in older reports). */
  learning?: { replay: RunStats; simulated: RunStats };
  durationSeconds?: number;
}

export interface KeepAliveBenchOptions {
  quick: boolean;
  threads: number;
  /** Folder of stories260K.gguf and llama-2-tiny-random.gguf. */
  sharedModels: string;
  /** Cache folder of synthetic models. */
  cacheDir: string;
  log: (line: string) => void;
  seed?: number;
  durationMs?: number;
}

export async function runKeepAliveBench(o: KeepAliveBenchOptions): Promise<KeepAliveReport> {
  const started = Date.now();
  const seed = o.seed ?? 1;
  const durationMs = o.durationMs ?? (o.quick ? 60_000 : 180_000);
  const repeats = o.quick ? 1 : 3;
  const files = await benchModelFiles(o);
  const names = [...BENCH_MODELS];
  const preset = { models: names, dayMs: durationMs, durationMs };
  const specOf = { mixed: mixedSpec, poisson: poissonSpec } as const;
  const traces = {
    mixed: generateTrace(mixedSpec({ ...preset, seed })),
    poisson: generateTrace(poissonSpec({ ...preset, seed })),
  };
  const learning = {
    mixed: generateTrace(mixedSpec({ ...preset, seed: seed + 1000 })),
    poisson: generateTrace(poissonSpec({ ...preset, seed: seed + 1000 })),
  };
  const keepAliveMs = scaledKeepAliveMs(traces.mixed.spec);
  const dayMs = durationMs;

  // 1. Reproducible and true to their parameters (validated on a long trace of each kind: 100 compressed days).
  o.log("keep-alive: generating and validating traces");
  const again = generateTrace(mixedSpec({ ...preset, seed }));
  const deterministic = serializeTrace(again) === serializeTrace(traces.mixed);
  const validation = {} as KeepAliveReport["validation"];
  for (const kind of ["mixed", "poisson"] as const) {
    const long = generateTrace(specOf[kind]({ ...preset, seed, durationMs: 100 * durationMs }));
    validation[kind] = { requests: long.requests.length, parameters: validateTrace(long) };
  }

  // 2. The simulator's model parameters, measured here.
  o.log("keep-alive: calibrating (cold and warm requests per model)");
  const base = { models: files, keepAliveMs, usageDayMs: dayMs, threads: o.threads, parallel: PARALLEL };
  const cal = await startBenchDaemon({ ...base, policy: "fixed", memoryBudgetBytes: 64 * 1024 * MiB });
  let models: SimModel[];
  try {
    models = await calibrate(cal, names, o.quick ? 2 : 3);
  } finally {
    await cal.stop();
  }
  const bytesOf = (n: string) => models.find((m) => m.name === n)!.bytes;
  const budgetBytes =
    PINNED.reduce((s, n) => s + bytesOf(n), 0) +
    3 * Math.max(...names.filter((n) => !PINNED.includes(n)).map(bytesOf)) +
    MiB;
  const run = { ...base, memoryBudgetBytes: budgetBytes };

  // 3. Learning (histogram), then a restart on the same home: the usage model must come back.
  const stores = mkdtempSync(path.join(os.tmpdir(), "llmos-bench-usage-"));
  const learned: Partial<Record<TraceKind, string>> = {};
  let learningRun: RunStats | undefined;
  let restart: KeepAliveReport["restart"] = { models: 0, gapsBefore: 0, learnedAfterRestart: null };
  const runs: PolicyRun[] = [];
  try {
    for (const kind of o.quick ? (["mixed"] as const) : (["mixed", "poisson"] as const)) {
      o.log(`keep-alive: learning replay (${kind}, histogram, ${durationMs / 1000}s)`);
      const b = await startBenchDaemon({ ...run, policy: "histogram" });
      await pin(b.daemon.url);
      const counter = new EventCounter(PINNED);
      const off = b.daemon.scheduler.subscribe((e) => counter.observe(e));
      const learnt = await replay({ trace: learning[kind], url: b.daemon.url });
      off();
      if (kind === "mixed") {
        learningRun = statsOf(counter.counts(0).coldStarts, learnt.ttftMs);
      }
      await b.stop(true);
      learned[kind] = path.join(stores, `${kind}.db`);
      copyDatabase(path.join(b.home, "llmos.db"), learned[kind]);
      if (kind === "mixed") restart = await checkRestart(b.home, run);
      rmSync(b.home, { recursive: true, force: true });
    }

    // 4. Measured replays, in rounds (each round replays every policy once, so a slow stretch of the machine
    //    falls on all of them alike).
    const plan: Array<[TraceKind, KeepPolicyName]> = [
      ["mixed", "fixed"],
      ["mixed", "histogram"],
      ...(o.quick
        ? []
        : ([
            ["poisson", "lru"],
            ["poisson", "gdsf"],
            ["poisson", "histogram"],
          ] as Array<[TraceKind, KeepPolicyName]>)),
    ];
    for (let rep = 0; rep < repeats; rep++) {
      for (const [kind, policy] of plan) {
        o.log(`keep-alive: replay ${kind} under ${policy} (round ${rep + 1}/${repeats})`);
        const usageDatabase = policy === "histogram" ? learned[kind] : undefined;
        runs.push(await replayRun(kind, policy, traces[kind], { ...run, ...(usageDatabase ? { usageDatabase } : {}) }));
      }
    }

    // 5. The simulator on the same traces, policies and learned stores, and on the learning replay's trace (from an
    //    empty store, as that replay started).
    const sim = (trace: Trace, policy: KeepPolicyName, usage: MemoryUsageRepository) =>
      simulate({
        trace,
        models,
        policy,
        keepAliveMs,
        memoryBudgetBytes: budgetBytes,
        parallel: PARALLEL,
        pinned: PINNED,
        usage,
        usageDayMs: dayMs,
      });
    let learningStats: KeepAliveReport["learning"];
    if (learningRun) {
      const l = await sim(learning.mixed, "histogram", new MemoryUsageRepository());
      learningStats = { replay: learningRun, simulated: statsOf(l.coldStarts, l.ttftMs) };
    }
    for (const kind of ["mixed", "poisson"] as const) {
      for (const policy of ["fixed", "lru", "gdsf", "histogram"] as const) {
        const usage = learned[kind] ? await readStore(learned[kind]) : new MemoryUsageRepository();
        const r = await sim(traces[kind], policy, usage);
        runs.push({ trace: kind, policy, kind: "simulated", ...summarize(r, r.ttftMs) });
      }
    }
    o.log("keep-alive: simulating a whole day");
    const day = generateTrace(
      mixedSpec({ ...preset, seed, durationMs: (24 * 3_600_000) / traces.mixed.spec.timeScale }),
    );
    const d = await sim(day, "histogram", learned.mixed ? await readStore(learned.mixed) : new MemoryUsageRepository());
    return {
      date: new Date().toISOString(),
      quick: o.quick,
      durationMs,
      timeScale: traces.mixed.spec.timeScale,
      keepAliveMs,
      budgetBytes,
      models,
      validation,
      deterministic,
      restart,
      runs,
      simulatedDay: { requests: day.requests.length, wallMs: d.wallMs, simulatedMs: d.simulatedMs },
      ...(learningStats ? { learning: learningStats } : {}),
      durationSeconds: Math.round((Date.now() - started) / 1000),
    };
  } finally {
    rmSync(stores, { recursive: true, force: true });
  }
}

/** stories260K and five 42M Q8_0 models with different seeds (written once into the cache). */
async function benchModelFiles(o: KeepAliveBenchOptions): Promise<BenchModelFile[]> {
  const tokenizer = path.join(o.sharedModels, "llama-2-tiny-random.gguf");
  const shapes = Object.fromEntries(
    [1, 2, 3, 4, 5].map((i) => [
      `llama-42m-q8_0-seed${i}`,
      { ...standardShape("llama-42m-q8_0", tokenizer), seed: 4200 + i, name: `llmos-llama-42m-q8_0-seed${i}` },
    ]),
  );
  const synth = await ensureSynthModels({ outDir: o.cacheDir, shapes, log: o.log });
  return [
    { name: BENCH_MODELS[0], path: path.join(o.sharedModels, "stories260K.gguf") },
    ...synth.map((s, i) => ({ name: BENCH_MODELS[i + 1]!, path: s.path })),
  ];
}

async function pin(url: string): Promise<void> {
  for (const name of PINNED) {
    const res = await fetch(`${url}/api/models/${name}/load`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ pinned: true }),
    });
    if (!res.ok) throw new Error(`pinning ${name}: HTTP ${res.status} ${await res.text()}`);
  }
}

type RunConfig = Omit<Parameters<typeof startBenchDaemon>[0], "policy">;

async function replayRun(kind: TraceKind, policy: KeepPolicyName, trace: Trace, cfg: RunConfig): Promise<PolicyRun> {
  const b = await startBenchDaemon({ ...cfg, policy });
  try {
    await pin(b.daemon.url);
    const counter = new EventCounter(PINNED);
    const off = b.daemon.scheduler.subscribe((e) => counter.observe(e));
    const idleBefore = total(b.daemon.scheduler.idleMemoryByteSeconds());
    const r = await replay({
      trace,
      url: b.daemon.url,
      onSend: (req) => {
        if (req.keepAliveMs !== undefined) counter.checker.expectKeepAlive(`${req.model}:latest`, req.keepAliveMs);
      },
    });
    const idle = total(b.daemon.scheduler.idleMemoryByteSeconds()) - idleBefore;
    off();
    const prewarm = await metricByLabel(b.daemon.url, "llmos_prewarm_total", "result");
    const counts = counter.counts(0);
    return {
      trace: kind,
      policy,
      kind: "replay",
      ...summarize(
        {
          ...counts,
          requests: trace.requests.length,
          idleByteSeconds: idle,
          prewarm: { used: prewarm.used ?? 0, wasted: prewarm.wasted ?? 0, failed: prewarm.failed ?? 0 },
          failed: r.failed,
        },
        r.ttftMs,
      ),
    };
  } finally {
    await b.stop();
  }
}

/** Restarts a daemon on `home`: its histogram must plan from the stored history (explain says "learned"). */
async function checkRestart(home: string, cfg: RunConfig): Promise<KeepAliveReport["restart"]> {
  const repo = SqliteUsageRepository.open(path.join(home, "llmos.db"));
  const stored = await repo.loadAll();
  await repo.close();
  const b = await startBenchDaemon({ ...cfg, home, policy: "histogram" });
  try {
    // A request, as users make them, and `/api/ps` read while it streams: the policy keeps what requests load, and
    // a learned plan may unload the model as soon as the request ends (so ps is read while the model serves).
    const model = BENCH_MODELS[3];
    const res = await fetch(`${b.daemon.url}/v1/completions`, {
      method: "POST",
      body: JSON.stringify({ model, prompt: "Once upon a time", max_tokens: 64, ignore_eos: true, stream: true }),
      headers: { "content-type": "application/json" },
    });
    if (!res.ok || !res.body)
      throw new Error(`a request after the restart failed: HTTP ${res.status} ${await res.text()}`);
    const chunks = (res.body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    await chunks.next(); // the model is loaded and serving
    const ps = (await (await fetch(`${b.daemon.url}/api/ps`)).json()) as {
      models: Array<{ name: string; keepReason?: string; keptBy?: string }>;
    };
    while (!(await chunks.next()).done);
    const shown = ps.models.find((m) => m.name === `${model}:latest`);
    return {
      models: stored.length,
      gapsBefore: Math.round(stored.reduce((n, r) => n + r.gaps.reduce((a, g) => a + g, 0), 0)),
      learnedAfterRestart: shown?.keepReason ?? (shown ? `kept by ${shown.keptBy ?? "?"}` : null),
    };
  } finally {
    await b.stop(true);
  }
}

function summarize(
  r: {
    requests: number;
    coldStarts: number;
    coldOwnRunner: number;
    idleByteSeconds: number;
    prewarm: PolicyRun["prewarm"];
    loads: number;
    evictions: number;
    violations: string[];
    failed: number;
  },
  ttft: readonly number[],
): Omit<PolicyRun, "trace" | "policy" | "kind"> {
  const ok = ttft.filter(Number.isFinite);
  return {
    requests: r.requests,
    coldStarts: r.coldStarts,
    coldOwnRunner: r.coldOwnRunner,
    ttftP50Ms: percentile(ok, 50),
    ttftP99Ms: percentile(ok, 99),
    idleGiBs: r.idleByteSeconds / 1024 ** 3,
    prewarm: r.prewarm,
    loads: r.loads,
    evictions: r.evictions,
    violations: r.violations,
    failed: r.failed,
  };
}

async function readStore(file: string): Promise<MemoryUsageRepository> {
  const repo = SqliteUsageRepository.open(file);
  const mem = new MemoryUsageRepository();
  await mem.save(await repo.loadAll());
  await repo.close();
  return mem;
}

function statsOf(coldStarts: number, ttftMs: readonly number[]): RunStats {
  const ok = ttftMs.filter(Number.isFinite);
  return { coldStarts, ttftP50Ms: percentile(ok, 50), ttftP99Ms: percentile(ok, 99) };
}

function total(m: Map<string, number>): number {
  let n = 0;
  for (const v of m.values()) n += v;
  return n;
}
