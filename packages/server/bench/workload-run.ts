/**
 * The "real workloads" section of `npm run bench`: for each model, an llmos daemon as a new install runs it once
 * its background build is done (the CPU backend built here when there is one; 4 slots of 2048 tokens, prompt cache
 * on) and llama-server (native build, same threads, `--parallel 4`, 4 x 2048, its prompt cache on), measured in
 * the same rounds, alternating which goes first.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startDaemon } from "../src/daemon.js";
import { newAgent } from "./http-client.js";
import { startLlamaServerSlots } from "./native-bench.js";
import { pairedRatio, settle } from "./stats.js";
import {
  summarize,
  workloadRound,
  type WorkloadOptions,
  type WorkloadRound,
  type WorkloadSummary,
  type WorkloadTarget,
} from "./workload-bench.js";

export interface WorkloadModelResult {
  model: string;
  /** The CPU backend llmos ran on: "built-here" or "shipped". */
  llmosCpuBackend: string;
  options: WorkloadOptions;
  llmos: WorkloadSummary;
  /** llama-server (native), when built. */
  llamaServer?: WorkloadSummary;
  /** Medians of per-round ratios llmos / llama-server. */
  ratios?: {
    turn8Ttft: number | undefined;
    conversationTotal: number | undefined;
    interleavedTotal: number | undefined;
    freshPromptTtft: number | undefined;
    longGenerationTps: number | undefined;
  };
}

export async function runWorkloads(opts: {
  models: Array<{ name: string; path: string }>;
  threads: number;
  rounds: number;
  options: WorkloadOptions;
  cpuBackendDir: string | null;
  llamaServer: string | undefined;
  log: (line: string) => void;
}): Promise<WorkloadModelResult[]> {
  const results: WorkloadModelResult[] = [];
  const agents: Array<{ destroy(): void }> = [];
  for (const m of opts.models) {
    const home = mkdtempSync(path.join(os.tmpdir(), "llmos-bench-workloads-"));
    const daemon = await startDaemon({
      home,
      port: 0,
      threads: opts.threads,
      engine: "llama-ffi",
      cpuBackend: opts.cpuBackendDir ?? "shipped",
      gpu: "off",
      logLevel: "warn",
      contextSize: 2048,
      parallel: 4,
    });
    const server = opts.llamaServer
      ? await startLlamaServerSlots(opts.llamaServer, m.path, {
          threads: opts.threads,
          parallel: 4,
          ctxPerSlot: 2048,
          port: 18941,
        })
      : undefined;
    try {
      await daemon.store.importFile(m.path, "workload");
      const llmos: WorkloadTarget = { name: "llmos", url: daemon.url, model: "workload", agent: newAgent() };
      const reference: WorkloadTarget | undefined = server && {
        name: "llama-server",
        url: server.url,
        model: m.name,
        agent: newAgent(),
      };
      agents.push(llmos.agent, ...(reference ? [reference.agent] : []));
      const mine: WorkloadRound[] = [];
      const theirs: WorkloadRound[] = [];
      // Warm both (load the model, first graph) with a request no round repeats.
      await workloadRound(llmos, 999, { ...opts.options, turns: 1, longTokens: 8 }).catch(() => undefined);
      if (reference) await workloadRound(reference, 999, { ...opts.options, turns: 1, longTokens: 8 });
      for (let round = 0; round < opts.rounds; round++) {
        opts.log(`real workloads: ${m.name}, round ${round + 1}/${opts.rounds}`);
        const seed = 1 + round;
        const order = round % 2 === 0 ? [llmos, reference] : [reference, llmos];
        for (const t of order) {
          if (!t) continue;
          await settle(500);
          const r = await workloadRound(t, seed, opts.options);
          (t === llmos ? mine : theirs).push(r);
        }
      }
      const a = summarize(mine);
      const b = theirs.length ? summarize(theirs) : undefined;
      const last = opts.options.turns - 1;
      results.push({
        model: m.name,
        llmosCpuBackend: opts.cpuBackendDir ? "built-here" : "shipped",
        options: opts.options,
        llmos: a,
        ...(b
          ? {
              llamaServer: b,
              ratios: {
                turn8Ttft: pairedRatio(a.ttftByTurnMs[last]?.samples, b.ttftByTurnMs[last]?.samples),
                conversationTotal: pairedRatio(a.conversationTotalMs.samples, b.conversationTotalMs.samples),
                interleavedTotal: pairedRatio(a.interleavedTotalMs.samples, b.interleavedTotalMs.samples),
                freshPromptTtft: pairedRatio(a.freshPromptTtftMs.samples, b.freshPromptTtftMs.samples),
                longGenerationTps: pairedRatio(a.longGenerationTps.samples, b.longGenerationTps.samples),
              },
            }
          : {}),
      });
    } finally {
      for (const a of agents.splice(0)) a.destroy();
      server?.close();
      await daemon.close();
      rmSync(home, { recursive: true, force: true });
    }
  }
  return results;
}
