import type { Command } from "commander";
import type { DaemonSnapshot } from "llmos";
import type { CliContext } from "../context.js";
import { renderTop } from "../top-view.js";

const ALT_SCREEN_ON = "\x1b[?1049h\x1b[?25l";
const ALT_SCREEN_OFF = "\x1b[?25h\x1b[?1049l";
const HOME_CLEAR = "\x1b[H\x1b[2J";

/**
 * `llmos top`: a live view of models, memory, slots, queue and tokens/s from the daemon's event stream, redrawn at
 * each snapshot until `q` (or Ctrl+C). Without a terminal, or with `--once`, prints one screen and exits.
 */
export function registerTop(program: Command, ctx: CliContext): void {
  program
    .command("top")
    .description("live view of models, memory, slots, queue and tokens/s (q to quit)")
    .option("--once", "print one screen and exit")
    .action(async (opts: { once?: boolean }, cmd: Command) => {
      const client = await ctx.client();
      const stop = new AbortController();
      const live = !opts.once && !ctx.json(cmd) && ctx.stdout.isTTY === true;
      const stdin = ctx.stdin as NodeJS.ReadStream;
      const quit = () => stop.abort();
      if (live) {
        ctx.write(ALT_SCREEN_ON);
        if (stdin.isTTY) stdin.setRawMode(true);
        stdin.resume();
        stdin.on("data", (key: Buffer) => {
          const k = key.toString();
          if (k === "q" || k === "Q" || k === "\x03") quit();
        });
        process.once("SIGINT", quit);
      }
      let last: DaemonSnapshot | undefined;
      try {
        for await (const event of client.events({ signal: stop.signal })) {
          if (event.type !== "snapshot") continue;
          last = event.data;
          if (ctx.json(cmd)) return ctx.printJson(last);
          if (!live) return ctx.print(renderTop(last));
          ctx.write(HOME_CLEAR + renderTop(last).replaceAll("\n", "\r\n"));
        }
      } catch (error) {
        if (!stop.signal.aborted) throw error;
      } finally {
        if (live) {
          ctx.write(ALT_SCREEN_OFF);
          if (stdin.isTTY) stdin.setRawMode(false);
          stdin.pause();
          process.off("SIGINT", quit);
        }
      }
      if (live && last) ctx.print(renderTop(last).split("\n").slice(0, 5).join("\n"));
    });
}
