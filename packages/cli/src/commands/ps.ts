import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { formatBytes, formatRelative, formatThreads, renderTable, shortDigest } from "../format.js";

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
            formatThreads(m.cpu),
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
