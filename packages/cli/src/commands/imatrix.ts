import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import type { ImatrixReport } from "llmos";
import type { CliContext } from "../context.js";
import { formatBytes } from "../format.js";
import { followJob, requireSuccess } from "../job-progress.js";
import { evalText } from "./eval-text.js";

interface ImatrixFlags {
  text?: string;
  output?: string;
  ctx?: string;
  chunks?: string;
}

/**
 * `llmos imatrix <model> [--text file] [-o file]`: the model's importance matrix over a text, computed by the
 * daemon's engine (llama-imatrix's method and GGUF format), saved to a file; its digest can be given to
 * `llmos quantize --imatrix` directly.
 */
export function registerImatrix(program: Command, ctx: CliContext): void {
  program
    .command("imatrix")
    .description("compute a model's importance matrix over a text (for low-bit quantization)")
    .argument("<model>", "the model (its F16/F32 original)")
    .option("--text <file>", "UTF-8 calibration text (default: the public-domain text shipped with llmos)")
    .option("-o, --output <file>", "where to save it (default: <model>.imatrix.gguf)")
    .option("--ctx <tokens>", "tokens per chunk (default: 512, or the model's training context if smaller)")
    .option("--chunks <n>", "use at most this many chunks")
    .action(async (model: string, opts: ImatrixFlags, cmd: Command) => {
      const client = await ctx.client();
      const json = ctx.json(cmd);
      const { name, text } = evalText(opts.text);
      const job = await client.jobs.imatrix({
        model,
        text,
        textName: name,
        ...(opts.ctx !== undefined ? { contextSize: Number(opts.ctx) } : {}),
        ...(opts.chunks !== undefined ? { maxChunks: Number(opts.chunks) } : {}),
      });
      const done = await followJob(ctx, client, job, json);
      requireSuccess(done);
      const report = done.result as ImatrixReport;
      const file = opts.output ?? `${model.replace(/[^\w.-]+/g, "_")}.imatrix.gguf`;
      writeFileSync(file, await client.jobs.output(done.id));
      if (json) return;
      ctx.print(`saved ${file} (${formatBytes(report.size)}, ${report.entries} tensors, ${report.chunks} chunks)`);
      ctx.print(`use it: llmos quantize ${model} <new-name> --type IQ2_XS --imatrix ${report.digest}`);
    });
}
