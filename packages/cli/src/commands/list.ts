import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { formatBytes, formatRelative, renderTable, shortDigest } from "../format.js";

/** `llmos list` / `llmos ls`: installed models. */
export function registerList(program: Command, ctx: CliContext): void {
  program
    .command("list")
    .alias("ls")
    .description("list installed models")
    .action(async (_opts: unknown, cmd: Command) => {
      const models = await (await ctx.client()).list();
      if (ctx.json(cmd)) return ctx.printJson(models);
      ctx.print(
        renderTable(
          ["NAME", "ID", "SIZE", "PARAMS", "QUANT", "MODIFIED"],
          models.map((m) => [
            m.name,
            shortDigest(m.digest),
            formatBytes(m.size),
            m.details?.parameterSize ?? "-",
            m.details?.quantization ?? "-",
            formatRelative(m.modifiedAt),
          ]),
        ),
      );
    });
}
