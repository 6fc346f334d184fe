import path from "node:path";
import cliProgress from "cli-progress";
import type { Command } from "commander";
import type { ProgressStream } from "llmos";
import { uploadFile } from "../blob-upload.js";
import type { CliContext } from "../context.js";
import { formatBytes } from "../format.js";

interface QuantizeFlags {
  type: string;
  imatrix?: string;
  pure?: boolean;
  allowRequantize?: boolean;
}

/**
 * `llmos quantize <model> <new-name> --type Q4_K_M [--imatrix file|sha256:...] [--pure] [--allow-requantize]`:
 * a new model from an existing one, quantized by the daemon, with a progress bar of tensors and bytes written.
 */
export function registerQuantize(program: Command, ctx: CliContext): void {
  program
    .command("quantize")
    .description("quantize a model into a new model (Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q4_0, IQ4_XS, ...)")
    .argument("<model>", "the model to quantize (F32/F16 weights; see --allow-requantize)")
    .argument("<new-name>", "name of the new model")
    .requiredOption("-t, --type <type>", "target type, e.g. Q4_K_M (the daemon lists the valid ones)")
    .option("--imatrix <file>", "importance matrix: an imatrix GGUF file, or sha256:<hex> from `llmos imatrix`")
    .option("--pure", "no k-quant mixes: every quantizable tensor to the type's base type")
    .option("--allow-requantize", "allow quantizing a model that is already quantized (loses more quality)")
    .action(async (model: string, name: string, opts: QuantizeFlags, cmd: Command) => {
      const client = await ctx.client();
      const json = ctx.json(cmd);
      // A file is sent as a blob (the daemon reads no path of a client outside LLMOS_IMPORT_DIRS).
      const imatrix =
        opts.imatrix === undefined || opts.imatrix.startsWith("sha256:")
          ? opts.imatrix
          : await uploadFile(ctx, client, path.resolve(opts.imatrix));
      const stream = client.quantize(model, name, {
        type: opts.type,
        ...(imatrix !== undefined ? { imatrix } : {}),
        ...(opts.pure ? { pure: true } : {}),
        ...(opts.allowRequantize ? { allowRequantize: true } : {}),
      });
      const info = await showQuantizeProgress(ctx, stream, json);
      if (json) return;
      ctx.print(`created ${info.name} (${formatBytes(info.size)}, ${info.details.quantization})`);
    });
}

/** Tensors done of all and bytes written, as a bar on a terminal, a line per status otherwise, NDJSON with --json. */
async function showQuantizeProgress(ctx: CliContext, stream: ProgressStream, json: boolean) {
  if (json) {
    for await (const event of stream) ctx.print(JSON.stringify(event));
    return stream.done();
  }
  const tty = Boolean(ctx.stderr.isTTY);
  let bar: cliProgress.SingleBar | undefined;
  let lastStatus = "";
  try {
    for await (const event of stream) {
      if (event.total && event.status.startsWith("quantizing")) {
        if (tty) {
          bar ??= new cliProgress.SingleBar(
            {
              stream: ctx.stderr,
              hideCursor: true,
              barsize: 25,
              format: `${event.status} {bar} {percentage}% {value}/{total} tensors {written}`,
            },
            cliProgress.Presets.shades_classic,
          );
          if (!bar.isActive) bar.start(event.total, 0, { written: "" });
          bar.update(event.completed ?? 0, { written: `${formatBytes(event.bytes ?? 0)} written` });
          continue;
        }
      }
      if (event.status !== lastStatus && event.status !== "success") {
        lastStatus = event.status;
        ctx.info(event.status);
      }
    }
  } finally {
    bar?.stop();
  }
  return stream.done();
}
