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
 * `llmos ps`: loaded models, their memory, CPU threads, slots, prompt-cache hit rate, why each is loaded and until
 * when, the keep-alive policy, and the background CPU-backend build while there is one; `--wide` adds peak memory
 * and limit, contended decode steps, sandbox, context and runner pid.
 */
export function registerPs(program: Command, ctx: CliContext): void {
  program
    .command("ps")
    .description("list loaded models")
    .option("-w, --wide", "every column: peak memory and limit, contended steps, sandbox, context, runner pid")
    .action(async (opts: { wide?: boolean }, cmd: Command) => {
      const ps = await (await ctx.client()).ps();
      if (ctx.json(cmd)) return ctx.printJson(ps);
      const columns = opts.wide ? PS_COLUMNS : PS_COLUMNS.filter((c) => !c.wide);
      ctx.print(
        renderTable(
          columns.map((c) => c.head),
          ps.models.map((m) => columns.map((c) => c.cell(m))),
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

/** The table's columns; `wide` ones only with `--wide` (a terminal's width holds the others). */
const PS_COLUMNS: Array<{ head: string; wide?: true; cell: (m: LoadedModel) => string | number }> = [
  { head: "NAME", cell: (m) => m.name + (m.pinned ? " (pinned)" : "") },
  { head: "ID", cell: (m) => shortDigest(m.digest) },
  { head: "STATE", cell: (m) => m.state },
  { head: "MEMORY", cell: (m) => formatBytes(m.memory.rssBytes ?? m.memory.estimatedBytes) },
  {
    head: "PEAK / LIMIT",
    wide: true,
    cell: (m) => `${formatBytes(m.memory.peakBytes)} / ${formatBytes(m.memory.limitBytes)}`,
  },
  {
    head: "PROCESSOR",
    cell: (m) =>
      m.gpuLayers > 0
        ? `GPU ${m.gpuLayers} layers`
        : m.cpuBackend?.source === "built-here"
          ? "CPU (built here)"
          : "CPU",
  },
  { head: "THREADS", cell: (m) => formatThreads(m.cpu) },
  {
    head: "CONTENDED",
    wide: true,
    cell: (m) => (m.stats.decodeBatches > 0 ? `${m.stats.contendedBatches}/${m.stats.decodeBatches} steps` : "-"),
  },
  { head: "SANDBOX", wide: true, cell: (m) => sandboxLabel(m.sandbox) },
  { head: "SLOTS", cell: (m) => `${m.slotsBusy}/${m.slots}${m.queued ? ` +${m.queued} queued` : ""}` },
  {
    // Share of prompt tokens the prompt cache served since the model loaded.
    head: "CACHE",
    cell: (m) => (m.promptCache?.hitRate == null ? "-" : `${Math.round(100 * m.promptCache.hitRate)}% hit`),
  },
  { head: "CONTEXT", wide: true, cell: (m) => m.contextSize },
  { head: "PID", wide: true, cell: (m) => m.runnerPid ?? "-" },
  { head: "LOADED FOR", cell: (m) => m.loadedFor ?? "request" },
  { head: "UNTIL", cell: (m) => formatRelative(m.expiresAt) },
];

/** One line on the daemon's background CPU-backend build (while it runs, and once it is ready, failed or impossible). */
export function cpuBackendBuildLine(b: NonNullable<PsResponse["cpuBackendBuild"]>): string {
  if (b.state !== "building") return `CPU backend: ${b.message}`;
  const step = `${b.phase ?? "starting"}${b.percent !== undefined ? ` ${b.percent}%` : ""}`;
  return `CPU backend: building in the background (${step}); models loaded after it is installed use it`;
}
