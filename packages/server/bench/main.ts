/**
 * `npm run bench` (`--quick` for about a minute or two): measures, in one run, llmos against node-llama-cpp called
 * directly and against native llama.cpp (when built with `npm run bench:native`), and writes docs/performance.md.
 * Every claim is a ratio of numbers measured in this run; medians of repetitions with their range.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ensureSynthModels } from "@llmos/gguf";
import { startDaemon, type Daemon } from "../src/daemon.js";
import { readCpuBackendManifest } from "../src/engine/llama-ffi/cpu-backend.js";
import { GREEDY, runEngineBench, type EngineBenchResult } from "./engine-bench.js";
import { concurrency, controlPlane, loadProfile, modelSwitch, singleStream } from "./http-bench.js";
import { monitoringOverhead } from "./monitoring-bench.js";
import { runContentionBench } from "./contention-bench.js";
import { contentionMixes } from "./contention-report.js";
import { sandboxOverhead } from "./sandbox-bench.js";
import { ChildProcessRunnerFactory, RUNNER_ENTRY } from "../src/runtime/child-process-runner-factory.js";
import { RunnerLauncher } from "../src/runtime/sandbox/runner-launcher.js";
import { probeSandbox } from "../src/runtime/sandbox/sandbox-probe.js";
import { createLogger } from "../src/telemetry/logger.js";
import { builtHereCpuBackendDir, llamaBenchOnce, nativeBinaries, nativeDir, startLlamaServer } from "./native-bench.js";
import { writeReport, type BenchReport } from "./report.js";
import { quantizationSection } from "./quantization-main.js";
import { runWorkloads } from "./workload-run.js";
import { keepAliveSection } from "./keep-alive/keep-alive-main.js";
import { clusterBench } from "./cluster-bench.js";

const REPO = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  process.argv[1]?.includes("/dist/") ? "../../../.." : "../../..",
);
const SHARED = path.resolve(REPO, "../shared/models");

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    render: { type: "string" },
    threads: { type: "string", default: "2" },
    out: { type: "string", default: path.join(REPO, "docs", "performance.md") },
  },
});
const quick = values.quick!;
const threads = Number(values.threads);
const reps = quick ? 3 : 5;
// A request is short (a quarter of a second on 42M): the HTTP/engine pairs are repeated more, so that one
// disturbed request does not decide the ratio.
const httpReps = quick ? 5 : 15;
// Concurrency levels (aggregate and HTTP); --quick keeps the ones the targets are checked at.
const levels = quick ? [1, 4] : [1, 2, 4, 8];
const tokens = 64;
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

async function main(): Promise<void> {
  const started = Date.now();
  const bins = nativeBinaries("llama-bench");
  const servers = nativeBinaries("llama-server");
  const cpuBackendDir = builtHereCpuBackendDir();
  const synth = await ensureSynthModels({
    outDir: path.join(REPO, ".cache", "models"),
    only: quick ? ["llama-42m"] : ["llama-42m", "llama-110m", "llama-42m-q8_0", "llama-110m-q8_0"],
    tokenizerSource: path.join(SHARED, "llama-2-tiny-random.gguf"),
    log,
  });
  const models: Array<{ name: string; path: string }> = [
    { name: "stories260K", path: path.join(SHARED, "stories260K.gguf") },
    ...synth.map((s) => ({ name: s.name, path: s.path })),
  ];
  const report: BenchReport = {
    date: new Date().toISOString(),
    quick,
    threads,
    tokens,
    repetitions: reps,
    machine: {
      cpu: os.cpus()[0]?.model ?? "?",
      cores: os.cpus().length,
      memoryBytes: os.totalmem(),
      node: process.version,
      platform: `${os.platform()} ${os.arch()}`,
    },
    native: bins.native ? nativeDir() : null,
    prebuiltReference: bins.prebuilt !== undefined,
    cpuBackend: cpuBackendDir ? readCpuBackendManifest(cpuBackendDir) : null,
    models: {},
  };
  if (!bins.native) log("native llama.cpp not built (npm run bench:native): native ratios are skipped");
  if (!cpuBackendDir)
    log("no CPU backend built here (npm run bench:native builds one): llmos runs on the shipped one only");

  // 1, 3 and 6. Engines: node-llama-cpp called directly, the llama-ffi runner engine in this process, and the
  // native references (llama-bench on both builds of the library, llama-server) in the same rounds.
  for (const m of models) {
    log(`engine bench: ${m.name}`);
    const references = Object.fromEntries(
      Object.entries(bins).map(([name, bin]) => [name, () => llamaBenchOnce(bin, m.path, threads, 128, tokens)]),
    );
    const aggregateReferences = m.name.startsWith("llama-42m")
      ? Object.entries(servers)
          .filter(([name]) => !quick || name === "native")
          .flatMap(([name, bin], i) => [
            {
              name: `llama-server, ${name}`,
              concurrency: 4,
              start: () => startLlamaServer(bin, m.path, threads, 4, 18931 + 2 * i),
            },
            ...(name === "native" && !quick
              ? [
                  {
                    name: `llama-server, ${name}, streamed`,
                    concurrency: 4,
                    start: () => startLlamaServer(bin, m.path, threads, 4, 18932 + 2 * i, true),
                  },
                ]
              : []),
          ])
      : [];
    const engine: EngineBenchResult = await runEngineBench({
      modelPath: m.path,
      threads,
      tokens,
      promptTokens: 128,
      repetitions: reps,
      concurrency: levels,
      log,
      references,
      aggregateReferences,
      cpuBackendDir,
    });
    report.models[m.name] = { path: m.path, engine };
  }

  // 2-5. llmos over HTTP: a real daemon with real runners.
  const home = mkdtempSync(path.join(os.tmpdir(), "llmos-bench-"));
  let daemon: Daemon | undefined;
  // The engine alone runs as the daemon's runners do: in the sandbox LLMOS_SANDBOX=auto gives them here.
  const benchLogger = createLogger("warn", process.stderr);
  const runners = new ChildProcessRunnerFactory(benchLogger, {
    launcher: new RunnerLauncher({
      mode: "auto",
      memoryMargin: 0.15,
      home,
      probe: probeSandbox({ mode: "auto", user: "nobody" }),
      entry: RUNNER_ENTRY,
      execArgv: process.execArgv,
      logger: benchLogger,
    }),
  });
  try {
    daemon = await startDaemon({
      home,
      port: 0,
      threads,
      engine: "llama-ffi",
      cpuBackend: cpuBackendDir ?? "shipped",
      gpu: "off",
      logLevel: "warn",
      contextSize: 512,
      parallel: 8,
      maxQueuePerModel: 512,
    });
    for (const m of models) await daemon.store.importFile(m.path, m.name.toLowerCase());
    for (const m of models) {
      const name = m.name.toLowerCase();
      log(`http single stream: ${m.name}`);
      // The engine alone is configured as the daemon's runner (8 sequences of 512 tokens), so the ratio is HTTP's.
      const alone = await runners.start(
        {
          engine: "llama-ffi",
          gpu: false,
          cpuBackendDir,
          streamIntervalMs: 20,
          modelPath: m.path,
          contextSize: 8 * 512,
          slots: 8,
          threads,
          gpuLayers: 0,
        },
        "engine-alone",
      );
      try {
        const prompt = await alone.tokenize("Once upon a time", { addBos: true });
        const engineOnce = async () => {
          const t0 = performance.now();
          const g = alone.generate({
            prompt,
            maxTokens: tokens,
            sampling: GREEDY,
            stop: [],
            stopAtEog: false,
            cachePrompt: false,
          });
          for await (const c of g) void c;
          const r = await g.result;
          return {
            generationTps: (r.completionTokens - 1) / (r.generateMs / 1000),
            requestTps: r.completionTokens / ((performance.now() - t0) / 1000),
          };
        };
        report.models[m.name]!.http = {
          single: await singleStream(daemon, name, "Once upon a time", tokens, httpReps, engineOnce),
        };
      } finally {
        await alone.stop();
      }
      log(`load profile: ${m.name}`);
      report.models[m.name]!.load = await loadProfile(daemon, name, quick ? 2 : 3);
    }
    const concModel = models.find((m) => m.name === "llama-42m") ?? models[0]!;
    report.concurrency = { model: concModel.name, levels: [] };
    for (const clients of levels) {
      log(`http concurrency ${clients}: ${concModel.name}`);
      report.concurrency.levels.push(
        await concurrency(daemon, concModel.name.toLowerCase(), "Once upon a time", tokens, clients, quick ? 1 : 3),
      );
    }
    log("control plane");
    report.controlPlane = {
      model: "stories260K",
      ...(await controlPlane(daemon, "stories260k", quick ? 100 : 400, 8)),
    };
    log("monitoring overhead: hot requests with and without a connected event stream");
    report.monitoring = await monitoringOverhead(
      daemon,
      concModel.name.toLowerCase(),
      16,
      quick ? 4 : 12,
      quick ? 10 : 30,
    );
  } finally {
    await daemon?.close();
    rmSync(home, { recursive: true, force: true });
  }

  // 7. Real workloads on the F16 synthetic models: conversations resent every turn, long prompts, long generations,
  // llmos over HTTP against llama-server (native) in the same rounds.
  const workloadModels = models.filter((m) => m.name === "llama-42m" || m.name === "llama-110m");
  if (!servers.native) log("native llama-server not built (npm run bench:native): real workloads run on llmos alone");
  report.workloads = await runWorkloads({
    models: workloadModels,
    threads,
    rounds: quick ? 1 : 3,
    options: { turns: 8, longTokens: quick ? 256 : 1024, freshWords: 1500, systemWords: 1000 },
    cpuBackendDir,
    llamaServer: servers.native,
    log,
  });

  // Scheduler: switching between two models when the budget holds only one.
  const switchHome = mkdtempSync(path.join(os.tmpdir(), "llmos-bench-switch-"));
  let sd: Daemon | undefined;
  try {
    const target = models.find((m) => m.name === "llama-42m") ?? models[0]!;
    const est = report.models[target.name]!.load!.estimatedBytes;
    sd = await startDaemon({
      home: switchHome,
      port: 0,
      threads,
      engine: "llama-ffi",
      cpuBackend: cpuBackendDir ?? "shipped",
      gpu: "off",
      logLevel: "warn",
      contextSize: 512,
      parallel: 8,
      memoryBudgetBytes: Math.round(est * 1.5),
    });
    await sd.store.importFile(target.path, "switch-a");
    await sd.store.copy("switch-a", "switch-b");
    log("model switch");
    report.modelSwitch = { model: target.name, ms: await modelSwitch(sd, "switch-a", "switch-b", quick ? 2 : 4) };
  } finally {
    await sd?.close();
    rmSync(switchHome, { recursive: true, force: true });
  }

  // Multi-model contention: several busy models on the same cores, each way of sharing them in the same rounds.
  log("multi-model contention");
  const files = Object.fromEntries(models.map((m) => [m.name, m.path]));
  const { models: busyModels, mixes } = contentionMixes(files, quick);
  report.contention = await runContentionBench({
    models: busyModels,
    mixes,
    cores: threads,
    windowMs: quick ? 1500 : 3000,
    rounds: quick ? 1 : 3,
    quantaMs: quick ? [50] : [20, 100],
    tokens: 256,
    cpuBackendDir,
    log,
  });
  // Runner sandbox: sandboxed and unsandboxed runners of the 42M model, same rounds.
  if (process.platform === "linux") {
    const target = models.find((m) => m.name === "llama-42m") ?? models[0]!;
    log(`runner sandbox: ${target.name}, sandboxed and not`);
    report.sandbox = await sandboxOverhead({
      modelName: target.name,
      modelPath: target.path,
      threads,
      tokens: 2 * tokens,
      rounds: quick ? 3 : 8,
      estimateBytes: report.models[target.name]!.load?.estimatedBytes ?? 1024 ** 3,
      cpuBackendDir,
      log,
    });
  }

  // Cluster: 3 nodes x 1 thread vs 3 independent daemons behind round-robin; forwarding overhead (docs/cluster.md).
  // On the 42M model: stories260K's 32 tokens take about 10 ms, so its runs measure HTTP hops, not serving models.
  const clusterModel = models.find((m) => m.name === "llama-42m") ?? models.find((m) => m.name === "stories260K")!;
  const hopModel = models.find((m) => m.name === "stories260K")!;
  report.cluster = await clusterBench(clusterModel.path, clusterModel.name, {
    quick,
    log,
    hopModelFile: hopModel.path,
  });

  report.durationSeconds = Math.round((Date.now() - started) / 1000);
  writeReport(values.out!, report);
  writeFileSync(values.out!.replace(/\.md$/, ".json"), JSON.stringify(report, null, 2) + "\n");
  log(`wrote ${values.out} in ${report.durationSeconds}s`);

  // Keep-alive policies: traces, replays and the simulator (a section of docs/performance.md, docs/keep-alive.json).
  await keepAliveSection({ quick, threads, out: values.out! });

  // Quantization: sizes, speed, perplexity and KL divergence per type; KV cache types (docs/quantization.md).
  await quantizationSection({ quick, threads });
}

// `--render docs/performance.json`: write the Markdown again from saved results, without measuring.
const run = values.render
  ? async () => writeReport(values.out!, JSON.parse(readFileSync(values.render!, "utf8")) as BenchReport)
  : main;
run().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
