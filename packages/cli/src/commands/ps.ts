import type { Command } from "commander";
import type { PsResponse } from "llmos";
import type { CliContext } from "../context.js";
import { formatBytes, formatRelative, renderTable, shortDigest } from "../format.js";

/** `llmos ps`: loaded models, their memory, slots and expiry. */
export function registerPs(program: Command, ctx: CliContext): void {
  program
    .command("ps")
    .description("list loaded models")
    .action(async (_opts: unknown, cmd: Command) => {
      const ps = await (await ctx.client()).ps();
      if (ctx.json(cmd)) return ctx.printJson(ps);
      ctx.print(
        renderTable(
          ["NAME", "ID", "STATE", "MEMORY", "PROCESSOR", "SLOTS", "CACHE", "CONTEXT", "PID", "UNTIL"],
          ps.models.map((m) => [
            m.name + (m.pinned ? " (pinned)" : ""),
            shortDigest(m.digest),
            m.state,
            formatBytes(m.memory.rssBytes ?? m.memory.estimatedBytes),
            m.gpuLayers > 0
              ? `GPU ${m.gpuLayers} layers`
              : m.cpuBackend?.source === "built-here"
                ? "CPU (built here)"
                : "CPU",
            `${m.slotsBusy}/${m.slots}${m.queued ? ` +${m.queued} queued` : ""}`,
            // Share of prompt tokens the prompt cache served since the model loaded.
            m.promptCache?.hitRate == null ? "-" : `${Math.round(100 * m.promptCache.hitRate)}% hit`,
            m.contextSize,
            m.runnerPid ?? "-",
            formatRelative(m.expiresAt),
          ]),
        ),
      );
      const build = ps.cpuBackendBuild;
      if (build) ctx.print(`\n${cpuBackendBuildLine(build)}`);
    });
}

/** One line on the daemon's background CPU-backend build (while it runs, and once it is ready, failed or impossible). */
export function cpuBackendBuildLine(b: NonNullable<PsResponse["cpuBackendBuild"]>): string {
  if (b.state !== "building") return `CPU backend: ${b.message}`;
  const step = `${b.phase ?? "starting"}${b.percent !== undefined ? ` ${b.percent}%` : ""}`;
  return `CPU backend: building in the background (${step}); models loaded after it is installed use it`;
}
