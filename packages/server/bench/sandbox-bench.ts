/**
 * The cost of the runner sandbox: runners started sandboxed (bubblewrap namespaces, cgroup limits, the user drop,
 * as `LLMOS_SANDBOX=auto` starts them on this machine) and unsandboxed (`off`), in the same rounds, alternating
 * which goes first: time from start to a loaded model (spawn, sandbox set-up, engine and model load), and
 * generation tokens/s. Targets (issue 17): generation at least 0.98x, at most 50 ms added to a load.
 */
import os from "node:os";
import path from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import type { SandboxSupport } from "@llmos/protocol";
import { ChildProcessRunnerFactory, RUNNER_ENTRY } from "../src/runtime/child-process-runner-factory.js";
import { RunnerLauncher } from "../src/runtime/sandbox/runner-launcher.js";
import { probeSandbox } from "../src/runtime/sandbox/sandbox-probe.js";
import { createLogger } from "../src/telemetry/logger.js";
import { GREEDY } from "./engine-bench.js";
import { median, pairedRatio, settle } from "./stats.js";

export interface SandboxBench {
  model: string;
  rounds: number;
  tokens: number;
  /** What the sandboxed runners got on this machine (`effective` should be `sandboxed`). */
  support: SandboxSupport;
  /** Start-to-loaded wall time per round, ms. */
  loadMsSandboxed: number[];
  loadMsPlain: number[];
  /** Generation tokens/s per round (the engine's own timing). */
  generationTpsSandboxed: number[];
  generationTpsPlain: number[];
  /** Median over rounds of sandboxed / plain generation tokens/s (target at least 0.98). */
  generationRatio: number | undefined;
  /** Median over rounds of sandboxed minus plain load time, ms (target at most 50). */
  addedLoadMs: number;
  /** How these numbers were taken when not by a full `npm run bench` (shown under the section). */
  note?: string;
}

export async function sandboxOverhead(o: {
  modelName: string;
  modelPath: string;
  threads: number;
  tokens: number;
  rounds: number;
  /** The scheduler's estimate for the model (the cgroup limit adds the margin). */
  estimateBytes: number;
  cpuBackendDir: string | null;
  log: (line: string) => void;
}): Promise<SandboxBench> {
  const home = mkdtempSync(path.join(os.tmpdir(), "llmos-bench-sandbox-"));
  const logger = createLogger("warn", process.stderr);
  const probe = probeSandbox({ mode: "auto", user: "nobody" });
  const factory = (mode: "auto" | "off") =>
    new ChildProcessRunnerFactory(logger, {
      launcher: new RunnerLauncher({
        mode,
        memoryMargin: 0.15,
        home,
        probe,
        entry: RUNNER_ENTRY,
        execArgv: process.execArgv,
        logger,
      }),
    });
  const sandboxed = factory("auto");
  const plain = factory("off");
  const support = (await probe).support;
  // From source, tsx transpiles the runner's modules into a cache under /tmp, which the sandbox hides behind a
  // fresh /tmp: every sandboxed start transpiles them again (about 60 ms here) while plain runners hit the cache.
  // `npm run bench` runs the built files, as a daemon does.
  if (RUNNER_ENTRY.endsWith(".ts"))
    o.log("sandbox bench: run from source, so sandboxed starts include transpiling the runner; run the built bench");
  if (support.effective !== "sandboxed")
    o.log(`sandbox bench: runners are ${support.effective} here: ${support.reason}`);
  const out = {
    load: { auto: [] as number[], off: [] as number[] },
    tps: { auto: [] as number[], off: [] as number[] },
  };
  const once = async (mode: "auto" | "off") => {
    const t0 = performance.now();
    const runner = await (mode === "auto" ? sandboxed : plain).start(
      {
        engine: "llama-ffi",
        gpu: false,
        cpuBackendDir: o.cpuBackendDir,
        streamIntervalMs: 20,
        modelPath: o.modelPath,
        contextSize: 512,
        slots: 1,
        threads: o.threads,
        gpuLayers: 0,
      },
      `bench-${mode}`,
      { memoryEstimateBytes: o.estimateBytes },
    );
    out.load[mode].push(performance.now() - t0);
    try {
      const prompt = await runner.tokenize("Once upon a time", { addBos: true });
      const g = runner.generate({ prompt, maxTokens: o.tokens, sampling: GREEDY, stop: [], stopAtEog: false });
      for await (const c of g) void c;
      const r = await g.result;
      out.tps[mode].push((r.completionTokens - 1) / (r.generateMs / 1000));
    } finally {
      await runner.stop();
    }
  };
  try {
    for (let r = 0; r < o.rounds; r++) {
      for (const mode of r % 2 === 0 ? (["off", "auto"] as const) : (["auto", "off"] as const)) {
        await settle();
        await once(mode);
      }
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
  return {
    model: o.modelName,
    rounds: o.rounds,
    tokens: o.tokens,
    support,
    loadMsSandboxed: out.load.auto,
    loadMsPlain: out.load.off,
    generationTpsSandboxed: out.tps.auto,
    generationTpsPlain: out.tps.off,
    generationRatio: pairedRatio(out.tps.auto, out.tps.off),
    addedLoadMs: median(out.load.auto.map((t, i) => t - out.load.off[i]!)),
  };
}
