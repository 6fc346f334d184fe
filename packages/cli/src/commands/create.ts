import fs from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { uploadModelfileFiles } from "../blob-upload.js";
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
      const client = await ctx.client();
      // Files the Modelfile names are sent as blobs; paths are relative to the Modelfile's folder.
      const modelfile = await uploadModelfileFiles(
        ctx,
        client,
        fs.readFileSync(opts.file, "utf8"),
        path.dirname(path.resolve(opts.file)),
      );
      const json = ctx.json(cmd);
      const info = await showProgress(ctx, client.create(name, modelfile), json);
      if (!json) ctx.print(`created ${info.name}`);
    });
}
