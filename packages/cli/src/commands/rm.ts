import type { Command } from "commander";
import type { CliContext } from "../context.js";

/** `llmos rm <model...>`: deletes models. */
export function registerRm(program: Command, ctx: CliContext): void {
  program
    .command("rm")
    .description("remove models")
    .argument("<model...>", "model names")
    .action(async (names: string[], _opts: unknown, cmd: Command) => {
      const client = await ctx.client();
      for (const name of names) {
        await client.remove(name);
        if (!ctx.json(cmd)) ctx.print(`deleted '${name}'`);
      }
      if (ctx.json(cmd)) ctx.printJson({ deleted: names });
    });
}
