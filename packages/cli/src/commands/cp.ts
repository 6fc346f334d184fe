import type { Command } from "commander";
import type { CliContext } from "../context.js";

/** `llmos cp <src> <dst>`: copies a model (blobs are shared). */
export function registerCp(program: Command, ctx: CliContext): void {
  program
    .command("cp")
    .description("copy a model to a new name")
    .argument("<source>", "existing model")
    .argument("<destination>", "new name")
    .action(async (source: string, destination: string, _opts: unknown, cmd: Command) => {
      const info = await (await ctx.client()).copy(source, destination);
      if (ctx.json(cmd)) return ctx.printJson(info);
      ctx.print(`copied '${source}' to '${info.name}'`);
    });
}
