/**
 * Multi-model contention: several models busy at once on the same cores. Each mix (1 to 4 busy models, single
 * streams and 4-stream batches) runs for a fixed window under every way of sharing the cores, in the same round:
 * - `scheduled`: llmos' scheduler decides the runners' allotments (a daemon's scheduler and runners; each
 *   generation holds a slot as an HTTP request would, without HTTP);
 * - `scheduled, pinned`: the same with `LLMOS_CPU_AFFINITY=on` (Linux with taskset);
 * - `all threads each`: every runner keeps every core, as before the scheduler owned the CPU (the collapse);
 * - `static a+b`: every fixed split of the cores among the busy runners;
 * - `time-sliced Q ms`: every runner has every core, and turns of Q ms are granted to one runner at a time
 *   (the others hold their decode steps: an allotment of 0 threads).
 * Throughput is generated tokens per second within the window; a model's share is its throughput over its solo
 * throughput (the same streams alone, measured in the same round), and a mix's aggregate is the sum of the
 * shares (1.0 = one model's worth of solo throughput). Also measured: how long the others take to get their
 * allotment back after a third model's request ends, and what one allotment change costs a runner.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { allowedCpus } from "../src/config/cpu-set.js";
import { startDaemon, type Daemon } from "../src/daemon.js";
import type { GenerateChunk } from "../src/engine/engine.js";
import { ChildProcessRunnerFactory } from "../src/runtime/child-process-runner-factory.js";
import type { RemoteGeneration, RunnerHandle } from "../src/runtime/runner-handle.js";
import type { SchedulerEvent } from "../src/scheduler/events.js";
import { createLogger } from "../src/telemetry/logger.js";
import { GREEDY } from "./engine-bench.js";
import { median, settle } from "./stats.js";

/** One busy model of a mix: `streams` generations at a time, restarted as they end, for the whole window. */
export interface BusyModel {
  /** A name of `ContentionOptions.models`. */
  model: string;
  streams: number;
}

export interface ContentionOptions {
  /** Models by name (a name may point at the same file as another: a second runner of it). */
  models: Record<string, string>;
  /** Mixes of busy models, measured in this order. */
  mixes: BusyModel[][];
  /** Cores shared (the first N CPUs this process may use). */
  cores: number;
  windowMs: number;
  rounds: number;
  /** Turn lengths of the time-sliced variant. */
  quantaMs: number[];
  /** Tokens per generation before it is restarted. */
  tokens: number;
  cpuBackendDir: string | null;
  log: (line: string) => void;
}

/** Tokens/s of each busy model, per round. */
export type VariantResult = Record<string, number[]>;

export interface MixResult {
  mix: BusyModel[];
  /** By variant name, tokens/s of each model per round. */
  variants: Record<string, VariantResult>;
}

export interface ContentionBench {
  /** Where the numbers come from when not from this run of `npm run bench` (e.g. a provisional smoke run). */
  provenance?: string;
  cores: number;
  windowMs: number;
  rounds: number;
  tokens: number;
  /** Solo tokens/s per round, by `model x streams`, on every core (the runner alone, no scheduler). */
  solo: Record<string, number[]>;
  /** Solo tokens/s per round through the scheduler (one busy model: llmos now), same keys. */
  soloScheduled: Record<string, number[]>;
  mixes: MixResult[];
  /** After a third model's request ended: ms until the other runners had their allotments back (per sample). */
  restoreMs: number[];
  /** A runner's own time to apply an allotment between two decode steps, while decoding (ms, per change). */
  switchMs: number[];
  /** Time from sending an allotment to its runner's answer, while decoding (ms, per change). */
  switchRoundTripMs: number[];
}

const soloKey = (b: BusyModel) => `${b.model} x${b.streams}`;

/** Starts a generation; returns a function that ends it (cancel), for the closed loop. */
type Start = () => Promise<{ generation: RemoteGeneration; done: () => void }>;

/**
 * Runs every busy model's streams in a closed loop for `windowMs` (a stream that ends starts another) and counts
 * the tokens that arrived within the window.
 */
async function window(busy: Array<{ key: string; streams: number; start: Start }>, windowMs: number) {
  const tokens: Record<string, number> = Object.fromEntries(busy.map((b) => [b.key, 0]));
  const t0 = performance.now();
  const end = t0 + windowMs;
  const loop = async (b: (typeof busy)[number]) => {
    while (performance.now() < end) {
      const { generation, done } = await b.start();
      try {
        for await (const chunk of generation as AsyncIterable<GenerateChunk>) {
          if (performance.now() >= end) {
            generation.cancel();
            break;
          }
          tokens[b.key]! += chunk.tokens;
        }
        await generation.result.catch(() => undefined);
      } finally {
        done();
      }
    }
  };
  await Promise.all(busy.flatMap((b) => Array.from({ length: b.streams }, () => loop(b))));
  const seconds = (performance.now() - t0) / 1000;
  return Object.fromEntries(Object.entries(tokens).map(([k, n]) => [k, n / seconds]));
}

/** Every way to give `cores` threads to `n` runners, each at least one (compositions), at most `limit` of them. */
export function staticSplits(cores: number, n: number, limit = 12): number[][] {
  if (n > cores) return [Array.from({ length: n }, () => 1)];
  const out: number[][] = [];
  const rec = (left: number, parts: number[]) => {
    if (out.length >= limit) return;
    if (parts.length === n - 1) {
      out.push([...parts, left]);
      return;
    }
    for (let k = 1; k <= left - (n - 1 - parts.length); k++) rec(left - k, [...parts, k]);
  };
  rec(cores, []);
  return out;
}

export async function runContentionBench(o: ContentionOptions): Promise<ContentionBench> {
  const cpus = allowedCpus().slice(0, o.cores);
  const names = [...new Set(o.mixes.flat().map((b) => b.model))];
  const runners = new ChildProcessRunnerFactory(createLogger("warn", process.stderr));
  const homes: string[] = [];
  const daemons: Record<string, Daemon> = {};
  const direct: Record<string, RunnerHandle> = {};
  const result: ContentionBench = {
    cores: o.cores,
    windowMs: o.windowMs,
    rounds: o.rounds,
    tokens: o.tokens,
    solo: {},
    soloScheduled: {},
    mixes: o.mixes.map((mix) => ({ mix, variants: {} })),
    restoreMs: [],
    switchMs: [],
    switchRoundTripMs: [],
  };
  const slots = Math.max(...o.mixes.flat().map((b) => b.streams));
  try {
    // Daemons: the scheduler deciding (and pinning, where taskset is there).
    for (const [variant, cpuAffinity] of [
      ["scheduled", false],
      ["scheduled, pinned", true],
    ] as const) {
      if (cpuAffinity && (process.platform !== "linux" || cpus.length < 2)) continue;
      const home = mkdtempSync(path.join(os.tmpdir(), "llmos-bench-cpu-"));
      homes.push(home);
      const d = await startDaemon(
        {
          home,
          port: 0,
          cpus,
          threads: o.cores,
          cpuAffinity,
          engine: "llama-ffi",
          cpuBackend: o.cpuBackendDir ?? "shipped",
          gpu: "off",
          logLevel: "warn",
          contextSize: 512,
          parallel: slots,
          keepAliveMs: -1,
        },
        // Stdout carries the CLI's JSON.
        { logDestination: process.stderr },
      );
      daemons[variant] = d;
      for (const name of names) {
        await d.store.importFile(o.models[name]!, name.toLowerCase());
        await d.scheduler.load(name.toLowerCase());
      }
    }
    // Runners driven directly: fixed allotments and turns.
    for (const name of names) {
      direct[name] = await runners.start(
        {
          engine: "llama-ffi",
          gpu: false,
          cpuBackendDir: o.cpuBackendDir,
          streamIntervalMs: 20,
          modelPath: o.models[name]!,
          contextSize: slots * 512,
          slots,
          threads: o.cores,
          gpuLayers: 0,
        },
        `bench-${name}`,
      );
    }
    const prompts: Record<string, number[]> = {};
    for (const name of names) prompts[name] = await direct[name]!.tokenize("Once upon a time", { addBos: true });
    const params = (name: string) => ({
      prompt: prompts[name]!,
      maxTokens: o.tokens,
      sampling: GREEDY,
      stop: [],
      stopAtEog: false,
      // Every request evaluates its prompt, as before the prompt cache: shares measure decoding under contention.
      cachePrompt: false,
    });
    const directStart =
        (name: string): Start =>
        async () => ({ generation: direct[name]!.generate(params(name)), done: () => undefined }),
      scheduledStart =
        (d: Daemon, name: string): Start =>
        async () => {
          const lease = await d.scheduler.acquire(name.toLowerCase(), { tenant: "bench" });
          return { generation: lease.handle.generate(params(name)), done: () => lease.release() };
        };
    const setAll = async (busy: readonly string[], threads: (i: number) => number) => {
      await Promise.all(busy.map((n, i) => direct[n]!.setCpu({ threads: threads(i), shared: busy.length > 1 })));
    };
    const push = (into: Record<string, number[]>, key: string, value: number) => (into[key] ??= []).push(value);

    for (let round = 0; round < o.rounds; round++) {
      o.log(`contention round ${round + 1}/${o.rounds}: solo`);
      const solos = new Map<string, BusyModel>(o.mixes.flat().map((b) => [soloKey(b), b]));
      for (const [key, b] of solos) {
        await setAll([b.model], () => o.cores);
        const alone = await window([{ key, streams: b.streams, start: directStart(b.model) }], o.windowMs);
        push(result.solo, key, alone[key]!);
        await settle();
        const d = daemons["scheduled"]!;
        const sched = await window([{ key, streams: b.streams, start: scheduledStart(d, b.model) }], o.windowMs);
        push(result.soloScheduled, key, sched[key]!);
        await settle();
      }
      for (const [i, mix] of o.mixes.entries()) {
        const label = mix.map(soloKey).join(" + ");
        const busyNames = mix.map((b) => b.model);
        const record = (variant: string, tps: Record<string, number>) => {
          const v = (result.mixes[i]!.variants[variant] ??= {});
          for (const b of mix) push(v, b.model, tps[soloKey(b)]!);
        };
        const directBusy = () => mix.map((b) => ({ key: soloKey(b), streams: b.streams, start: directStart(b.model) }));
        for (const [variant, d] of Object.entries(daemons)) {
          o.log(`  ${label}: ${variant}`);
          const busy = mix.map((b) => ({ key: soloKey(b), streams: b.streams, start: scheduledStart(d, b.model) }));
          record(variant, await window(busy, o.windowMs));
          await settle();
        }
        if (mix.length > 1) {
          o.log(`  ${label}: all threads each`);
          await setAll(busyNames, () => o.cores);
          record("all threads each", await window(directBusy(), o.windowMs));
          await settle();
          for (const split of staticSplits(o.cores, mix.length)) {
            const variant = `static ${split.join("+")}`;
            o.log(`  ${label}: ${variant}`);
            await setAll(busyNames, (k) => split[k]!);
            record(variant, await window(directBusy(), o.windowMs));
            await settle();
          }
          for (const q of o.quantaMs) {
            o.log(`  ${label}: time-sliced ${q} ms`);
            await setAll(busyNames, () => o.cores);
            record(`time-sliced ${q} ms`, await timeSliced(busyNames, q, () => window(directBusy(), o.windowMs)));
            await setAll(busyNames, () => o.cores);
            await settle();
          }
        }
      }
      o.log(`contention round ${round + 1}/${o.rounds}: allotments restored after a third model`);
      result.restoreMs.push(...(await restoreLatency(daemons["scheduled"]!, o, scheduledStart)));
    }
    for (const name of names) await direct[name]!.setCpu({ threads: o.cores, shared: false });
    return result;

    /** Grants turns of `q` ms round robin while `run` runs; records what each switch cost. */
    async function timeSliced<T>(busy: readonly string[], q: number, run: () => Promise<T>): Promise<T> {
      let stop = false;
      const turns = (async () => {
        await Promise.all(busy.slice(1).map((n) => direct[n]!.setCpu({ threads: 0, shared: true })));
        for (let turn = 0; !stop; turn++) {
          await settle(q);
          if (stop) break;
          const from = direct[busy[turn % busy.length]!]!;
          const to = direct[busy[(turn + 1) % busy.length]!]!;
          const t0 = performance.now();
          const r = await from.setCpu({ threads: 0, shared: true });
          await to.setCpu({ threads: o.cores, shared: true });
          result.switchRoundTripMs.push(performance.now() - t0);
          result.switchMs.push(r.appliedMs);
        }
      })();
      try {
        return await run();
      } finally {
        stop = true;
        await turns;
      }
    }
  } finally {
    for (const r of Object.values(direct)) await r.stop();
    for (const d of Object.values(daemons)) await d.close();
    for (const h of homes) rmSync(h, { recursive: true, force: true });
  }
}

/**
 * The busy models of the first mix with more than one model (minus one) keep running; a third model gets one
 * short request at a time; measured: from that request's end until every other runner has its allotment from
 * before back (0 when it never changed).
 */
async function restoreLatency(
  d: Daemon,
  o: ContentionOptions,
  start: (d: Daemon, name: string) => Start,
): Promise<number[]> {
  const mix = o.mixes.find((m) => m.length >= 2);
  if (!mix) return [];
  const [extra, ...others] = [mix[mix.length - 1]!, ...mix.slice(0, -1)];
  const samples: number[] = [];
  const threadsOf = async () =>
    Object.fromEntries(
      (await d.scheduler.ps()).models.map((m) => [
        m.name.replace(/:latest$/, ""),
        { t: m.cpu.threads, at: m.cpu.appliedAt },
      ]),
    );
  let running = true;
  const loops = others.map(async (b) => {
    const s = start(d, b.model);
    while (running) {
      const { generation, done } = await s();
      for await (const c of generation) void c;
      done();
    }
  });
  try {
    await settle(200);
    const before = await threadsOf();
    for (let i = 0; i < 5; i++) {
      const lease = await d.scheduler.acquire(extra.model.toLowerCase(), { tenant: "bench" });
      const g = lease.handle.generate({ prompt: [1], maxTokens: 8, sampling: GREEDY, stop: [], stopAtEog: false });
      for await (const c of g) void c;
      const restored = waitRestored(
        d,
        others.map((b) => b.model.toLowerCase()),
        before,
      );
      const t0 = performance.now();
      lease.release();
      await restored;
      samples.push(performance.now() - t0);
      await settle(150);
    }
  } finally {
    running = false;
    await Promise.all(loops);
  }
  return samples;
}

/**
 * Resolves once every model in `names` has applied its thread count from `before` again (at once for those whose
 * decided count is that already). Reads the scheduler's snapshot and events only, so no stats request to a busy
 * runner delays it.
 */
function waitRestored(d: Daemon, names: string[], before: Record<string, { t: number }>): Promise<void> {
  const canonical = (n: string) => (n.includes(":") ? n : `${n}:latest`);
  const decided = new Map(d.scheduler.snapshot().models.map((m) => [m.name, m.cpu?.threads ?? 0]));
  const waiting = new Set(names.filter((n) => decided.get(canonical(n)) !== before[n]!.t).map(canonical));
  const want = new Map(names.map((n) => [canonical(n), before[n]!.t]));
  return new Promise((resolve) => {
    if (waiting.size === 0) return resolve();
    const off = d.scheduler.subscribe((e: SchedulerEvent) => {
      if (e.type !== "model.cpu_applied" || want.get(e.model) !== e.threads) return;
      waiting.delete(e.model);
      if (waiting.size > 0) return;
      off();
      resolve();
    });
  });
}

/** Median tokens/s of each model of a variant, and its aggregate share of solo throughput (paired by round). */
export function summarize(bench: ContentionBench, mix: MixResult, variant: string) {
  const v = mix.variants[variant];
  if (!v) return undefined;
  const perModel = mix.mix.map((b) => {
    const tps = v[b.model] ?? [];
    const solo = bench.solo[soloKey(b)] ?? [];
    const shares = tps.map((x, i) => (solo[i] ? x / solo[i]! : NaN)).filter(Number.isFinite);
    return { model: b.model, streams: b.streams, tps: median(tps), share: median(shares) };
  });
  const rounds = Math.max(0, ...mix.mix.map((b) => (v[b.model] ?? []).length));
  const aggregates: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let sum = 0;
    for (const b of mix.mix) sum += (v[b.model]?.[r] ?? NaN) / (bench.solo[soloKey(b)]?.[r] ?? NaN);
    if (Number.isFinite(sum)) aggregates.push(sum);
  }
  return { perModel, aggregate: median(aggregates), aggregates };
}
