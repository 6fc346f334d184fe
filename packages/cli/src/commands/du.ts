import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { formatBytes, renderTable } from "../format.js";

/** `llmos du`: disk use of the model store, per model (unique vs shared bytes). */
export function registerDu(program: Command, ctx: CliContext): void {
  program
    .command("du")
    .description("disk use of the model store")
    .action(async (_opts: unknown, cmd: Command) => {
      const du = await (await ctx.client()).diskUsage();
      if (ctx.json(cmd)) return ctx.printJson(du);
      ctx.print(
        renderTable(
          ["NAME", "SIZE", "UNIQUE", "SHARED"],
          du.models.map((m) => [m.name, formatBytes(m.bytes), formatBytes(m.uniqueBytes), formatBytes(m.sharedBytes)]),
        ),
      );
      ctx.print("");
      ctx.print(
        `total ${formatBytes(du.totalBytes)} (blobs ${formatBytes(du.blobBytes)}, shared ${formatBytes(du.sharedBytes)}, ` +
          `unreferenced ${formatBytes(du.unreferencedBytes)}, partial downloads ${formatBytes(du.partialBytes)})`,
      );
    });
}
