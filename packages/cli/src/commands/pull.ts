import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { showProgress } from "../progress.js";

/** `llmos pull <reference> [--revision R] [--name N]`: downloads a model with a progress bar. */
export function registerPull(program: Command, ctx: CliContext): void {
  program
    .command("pull")
    .description("download a model (e.g. hf.co/owner/repo:Q4_K_M)")
    .argument("<reference>", "model reference")
    .option("--revision <rev>", "repository revision (branch, tag or commit)")
    .option("--name <name>", "local name (default: derived from the reference)")
    .action(async (reference: string, opts: { revision?: string; name?: string }, cmd: Command) => {
      const client = await ctx.client();
      const json = ctx.json(cmd);
      const info = await showProgress(ctx, client.pull(reference, { revision: opts.revision, name: opts.name }), json);
      if (!json) ctx.print(`pulled ${info.name}`);
    });
}
