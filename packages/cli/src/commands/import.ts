import type { Command } from "commander";
import { uploadFile } from "../blob-upload.js";
import type { CliContext } from "../context.js";
import { formatBytes, shortDigest } from "../format.js";

/** `llmos import <file> <name[:tag]>`: adds a local GGUF file to the store. */
export function registerImport(program: Command, ctx: CliContext): void {
  program
    .command("import")
    .description("import a local GGUF file as a model")
    .argument("<file>", "GGUF file on this machine (sent to the daemon as a blob)")
    .argument("<name>", "model name, name[:tag]")
    .action(async (file: string, name: string, _opts: unknown, cmd: Command) => {
      const client = await ctx.client();
      const digest = await uploadFile(ctx, client, file);
      const info = await client.create(name, `FROM @${digest}\n`);
      if (ctx.json(cmd)) return ctx.printJson(info);
      ctx.print(`imported ${info.name} (${shortDigest(info.digest)}, ${formatBytes(info.size)})`);
    });
}
