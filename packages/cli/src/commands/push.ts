import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { showProgress } from "../progress.js";

/** `llmos push <model> <reference> [--insecure]`: uploads a model to an OCI registry with a progress bar. */
export function registerPush(program: Command, ctx: CliContext): void {
  program
    .command("push")
    .description("upload a model to an OCI registry in Ollama's layout (e.g. registry.example.com/team/model:tag)")
    .argument("<model>", "local model name")
    .argument("<reference>", "where to: {registry}/{repository}:{tag} or oci://{registry}/{repository}:{tag}")
    .option("--insecure", "plain http to the registry (only where the daemon's pull policy allows it)")
    .action(async (name: string, reference: string, opts: { insecure?: boolean }, cmd: Command) => {
      const client = await ctx.client();
      const json = ctx.json(cmd);
      const result = await showProgress(ctx, client.push(name, reference, { insecure: opts.insecure }), json);
      if (!json) ctx.print(`pushed ${name} to ${result.reference} (${result.manifestDigest})`);
    });
}
