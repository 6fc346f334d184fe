import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { formatBytes, formatRelative, shortDigest } from "../format.js";

/** `llmos show <model> [--modelfile]`: details of one model. */
export function registerShow(program: Command, ctx: CliContext): void {
  program
    .command("show")
    .description("show a model's details")
    .argument("<model>", "model name")
    .option("--modelfile", "print the model's definition file")
    .action(async (name: string, opts: { modelfile?: boolean }, cmd: Command) => {
      const info = await (await ctx.client()).show(name);
      if (ctx.json(cmd)) return ctx.printJson(info);
      if (opts.modelfile) return ctx.print(info.modelfile ?? `FROM ${info.name}`);
      const d = info.details;
      const lines: Array<[string, string | number]> = [
        ["name", info.name],
        ["id", shortDigest(info.digest)],
        ["size", formatBytes(info.size)],
        ["modified", formatRelative(info.modifiedAt)],
        ["architecture", d.architecture],
        ["parameters", `${d.parameterSize} (${d.parameterCount})`],
        ["quantization", d.quantization],
        ...(info.quantizedFrom
          ? ([
              [
                "quantized from",
                `${shortDigest(info.quantizedFrom.sourceDigest)} by llmos (${info.quantizedFrom.fallbackTensors} of ${info.quantizedFrom.tensors} tensors in another type${info.quantizedFrom.imatrixDigest ? ", with an importance matrix" : ""})`,
              ],
            ] as Array<[string, string]>)
          : []),
        ["context length", d.contextLength],
        ["embedding length", d.embeddingLength],
        ["layers", d.blockCount],
        ["heads", `${d.headCount} (kv ${d.headCountKv})`],
        ["vocabulary", d.vocabSize],
        ["chat template", d.hasChatTemplate ? "yes" : "no"],
      ];
      const width = Math.max(...lines.map(([k]) => k.length));
      for (const [k, v] of lines) ctx.print(`  ${k.padEnd(width)}   ${v}`);
      const params = Object.entries(info.parameters ?? {});
      if (params.length) {
        ctx.print("\n  parameters");
        for (const [k, v] of params) ctx.print(`    ${k.padEnd(width - 2)}   ${JSON.stringify(v)}`);
      }
      if (info.origin) {
        const o = info.origin;
        ctx.print("\n  pulled from");
        const rows: Array<[string, string]> = [
          ["registry", o.registry],
          ["repository", o.repository],
          ...(o.tag !== undefined ? [["tag", o.tag] as [string, string]] : []),
          ["manifest", o.manifestDigest],
        ];
        for (const [k, v] of rows) ctx.print(`    ${k.padEnd(width - 2)}   ${v}`);
      }
      if (info.projectors?.length) {
        ctx.print(`\n  projector\n    ${info.projectors.join(", ")} (stored; not used yet)`);
      }
      if (info.system) ctx.print(`\n  system\n    ${info.system}`);
      if (info.license) ctx.print(`\n  license\n    ${info.license.split("\n")[0]}`);
    });
}
