import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { showProgress } from "../progress.js";

/** `llmos pull <reference> [--revision R] [--name N]`: downloads a model with a progress bar. */
export function registerPull(program: Command, ctx: CliContext): void {
  program
    .command("pull")
    .description("download a model (e.g. llama3.2:1b, hf.co/owner/repo:Q4_K_M, oci://ghcr.io/org/model:tag)")
    .argument(
      "<reference>",
      "a library name (Ollama's, or LLMOS_OCI_REGISTRY's), {registry}/{namespace}/{name}:{tag}, oci://..., hf.co/..., or a URL",
    )
    .option("--revision <rev>", "Hugging Face repository revision (branch, tag or commit)")
    .option("--name <name>", "local name (default: derived from the reference)")
    .option("--insecure", "plain http to the registry (only where the daemon's pull policy allows it)")
    .action(async (reference: string, opts: { revision?: string; name?: string; insecure?: boolean }, cmd: Command) => {
      const client = await ctx.client();
      const json = ctx.json(cmd);
      const info = await showProgress(
        ctx,
        client.pull(reference, { revision: opts.revision, name: opts.name, insecure: opts.insecure }),
        json,
      );
      if (!json) ctx.print(`pulled ${info.name}`);
    });
}
