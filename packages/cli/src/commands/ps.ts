import type { Command } from "commander";
import type { LoadedModel, PsResponse } from "llmos";
import type { CliContext } from "../context.js";
import { formatBytes, formatRelative, formatThreads, renderTable, shortDigest } from "../format.js";

/** How a runner is isolated, in a word: its namespaces sandbox and its cgroup limits (see `llmos ps --json`). */
export function sandboxLabel(sandbox: LoadedModel["sandbox"]): string {
  if (!sandbox) return "-";
  if (sandbox.sandboxed) return sandbox.reason ? "partial" : "yes";
  return sandbox.cgroup ? "limits only" : "no";
}

/**
 * `llmos ps`: loaded models, their memory (and peak / limit), slots, prompt-cache hit rate, CPU share, sandbox, why
 * each is loaded and until when, the keep-alive policy, and the background CPU-backend build while there is one.
 */
export function registerPs(program: Command, ctx: CliContext): void {
  program
    .command("ps")
    .description("list loaded models")
    .action(async (_opts: unknown, cmd: Command) => {
      const ps = await (await ctx.client()).ps();
      if (ctx.json(cmd)) return ctx.printJson(ps);
      ctx.print(
        renderTable(
          [
            "NAME",
            "ID",
            "STATE",
            "MEMORY",
            "PEAK / LIMIT",
            "PROCESSOR",
            "THREADS",
            "CONTENDED",
            "SANDBOX",
            "SLOTS",
            "CACHE",
            "CONTEXT",
            "PID",
            "LOADED FOR",
            "UNTIL",
          ],
          ps.models.map((m) => [
            m.name + (m.pinned ? " (pinned)" : ""),
            shortDigest(m.digest),
            m.state,
            formatBytes(m.memory.rssBytes ?? m.memory.estimatedBytes),
            `${formatBytes(m.memory.peakBytes)} / ${formatBytes(m.memory.limitBytes)}`,
            m.gpuLayers > 0
              ? `GPU ${m.gpuLayers} layers`
              : m.cpuBackend?.source === "built-here"
                ? "CPU (built here)"
                : "CPU",
            formatThreads(m.cpu),
            m.stats.decodeBatches > 0 ? `${m.stats.contendedBatches}/${m.stats.decodeBatches} steps` : "-",
            sandboxLabel(m.sandbox),
            `${m.slotsBusy}/${m.slots}${m.queued ? ` +${m.queued} queued` : ""}`,
            // Share of prompt tokens the prompt cache served since the model loaded.
            m.promptCache?.hitRate == null ? "-" : `${Math.round(100 * m.promptCache.hitRate)}% hit`,
            m.contextSize,
            m.runnerPid ?? "-",
            m.loadedFor ?? "request",
            formatRelative(m.expiresAt),
          ]),
        ),
      );
      const p = ps.policy;
      if (p)
        ctx.print(
          `keep-alive policy: ${p.name}${p.configured !== p.name ? ` (configured: ${p.configured})` : ""}${p.warning ? ` - ${p.warning}` : ""}`,
        );
      const build = ps.cpuBackendBuild;
      if (build) ctx.print(cpuBackendBuildLine(build));
    });
}

/** One line on the daemon's background CPU-backend build (while it runs, and once it is ready, failed or impossible). */
export function cpuBackendBuildLine(b: NonNullable<PsResponse["cpuBackendBuild"]>): string {
  if (b.state !== "building") return `CPU backend: ${b.message}`;
  const step = `${b.phase ?? "starting"}${b.percent !== undefined ? ` ${b.percent}%` : ""}`;
  return `CPU backend: building in the background (${step}); models loaded after it is installed use it`;
}
