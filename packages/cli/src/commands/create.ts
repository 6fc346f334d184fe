import fs from "node:fs";
import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { showProgress } from "../progress.js";

/** `llmos create <name> -f <file>`: creates a model from a definition file (Modelfile syntax). */
export function registerCreate(program: Command, ctx: CliContext): void {
  program
    .command("create")
    .description("create a model from a Modelfile")
    .argument("<name>", "new model name")
    .requiredOption("-f, --file <file>", "definition file")
    .action(async (name: string, opts: { file: string }, cmd: Command) => {
      const modelfile = fs.readFileSync(opts.file, "utf8");
      const client = await ctx.client();
      const json = ctx.json(cmd);
      const info = await showProgress(ctx, client.create(name, modelfile), json);
      if (!json) ctx.print(`created ${info.name}`);
    });
}
