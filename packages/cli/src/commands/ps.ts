import type { Command } from "commander";
import type { CliContext } from "../context.js";
import type { LoadedModel } from "llmos";
import { formatBytes, formatCpuList, formatRelative, renderTable, shortDigest } from "../format.js";

/** `llmos ps`: loaded models, their memory, slots, CPU share and expiry. */
export function registerPs(program: Command, ctx: CliContext): void {
  program
    .command("ps")
    .description("list loaded models")
    .action(async (_opts: unknown, cmd: Command) => {
      const ps = await (await ctx.client()).ps();
      if (ctx.json(cmd)) return ctx.printJson(ps);
      ctx.print(
        renderTable(
          ["NAME", "ID", "STATE", "MEMORY", "PROCESSOR", "THREADS", "CONTENDED", "SLOTS", "CONTEXT", "PID", "UNTIL"],
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
            threads(m.cpu),
            m.stats.decodeBatches > 0 ? `${m.stats.contendedBatches}/${m.stats.decodeBatches} steps` : "-",
            `${m.slotsBusy}/${m.slots}${m.queued ? ` +${m.queued} queued` : ""}`,
            m.contextSize,
            m.runnerPid ?? "-",
            formatRelative(m.expiresAt),
          ]),
        ),
      );
    });
}

/** `2`, `1 on 0 (shared)`, or `idle` when the runner has no threads now. */
function threads(cpu: LoadedModel["cpu"] | undefined): string {
  if (!cpu || cpu.threads === 0) return "idle";
  return `${cpu.threads}${cpu.cpus ? ` on ${formatCpuList(cpu.cpus)}` : ""}${cpu.shared ? " (shared)" : ""}`;
}
