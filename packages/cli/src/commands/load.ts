import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { formatRelative } from "../format.js";

/** `llmos load <model> [--keep-alive D] [--pin] [--min-threads N]` and `llmos unload <model>`. */
export function registerLoad(program: Command, ctx: CliContext): void {
  program
    .command("load")
    .description("load a model into memory")
    .argument("<model>", "model name")
    .option("--keep-alive <duration>", "stay loaded this long after the last request (e.g. 10m, -1 = forever)")
    .option("--pin", "never evict this model")
    .option("--context-size <tokens>", "context size per sequence")
    .option("--parallel <n>", "parallel sequences")
    .option("--min-threads <n>", "the least decode threads it gets while busy, however many other models are")
    .action(
      async (
        name: string,
        opts: { keepAlive?: string; pin?: boolean; contextSize?: string; parallel?: string; minThreads?: string },
        cmd: Command,
      ) => {
        const client = await ctx.client();
        const keepAlive =
          opts.keepAlive === undefined
            ? undefined
            : /^-?\d+$/.test(opts.keepAlive)
              ? Number(opts.keepAlive)
              : opts.keepAlive;
        const model = await client.loadModel(name, {
          keepAlive,
          pinned: opts.pin || undefined,
          contextSize: opts.contextSize === undefined ? undefined : Number(opts.contextSize),
          parallel: opts.parallel === undefined ? undefined : Number(opts.parallel),
          minThreads: opts.minThreads === undefined ? undefined : Number(opts.minThreads),
        });
        if (ctx.json(cmd)) return ctx.printJson(model.info ?? { name: model.name });
        const until = model.info ? `, expires ${formatRelative(model.info.expiresAt)}` : "";
        ctx.print(`loaded ${model.name}${model.info?.pinned ? " (pinned)" : ""}${until}`);
      },
    );

  program
    .command("unload")
    .description("unload a model from memory")
    .argument("<model>", "model name")
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      await (await ctx.client()).unloadModel(name);
      if (ctx.json(cmd)) return ctx.printJson({ unloaded: name });
      ctx.print(`unloaded ${name}`);
    });
}
