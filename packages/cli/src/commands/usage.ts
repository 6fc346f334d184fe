import type { Command } from "commander";
import type { CliContext } from "../context.js";
import { formatRelative, parseSince, renderTable } from "../format.js";

/** `llmos usage [--since] [--key] [--model]` and `llmos audit [--since] [--limit] [--action]`. */
export function registerUsage(program: Command, ctx: CliContext): void {
  program
    .command("usage")
    .description("token and request usage per key, model and day")
    .option("--since <time>", "ISO time or duration ago (e.g. 24h, 7d)")
    .option("--key <id>", "only this key (none = requests without a key)")
    .option("--model <name>", "only this model")
    .action(async (opts: { since?: string; key?: string; model?: string }, cmd: Command) => {
      const rows = await (
        await ctx.client()
      ).usage({
        since: opts.since === undefined ? undefined : parseSince(opts.since),
        keyId: opts.key,
        model: opts.model,
      });
      if (ctx.json(cmd)) return ctx.printJson(rows);
      ctx.print(
        renderTable(
          ["DAY", "KEY", "MODEL", "REQUESTS", "PROMPT TOKENS", "COMPLETION TOKENS"],
          rows.map((r) => [r.day, r.keyId ?? "(none)", r.model, r.requests, r.promptTokens, r.completionTokens]),
        ),
      );
    });

  program
    .command("audit")
    .description("audit log of admin, model and auth events (newest first)")
    .option("--since <time>", "ISO time or duration ago (e.g. 1h)")
    .option("--limit <n>", "most entries (default 100)")
    .option("--action <action>", "only this action (e.g. key.create)")
    .action(async (opts: { since?: string; limit?: string; action?: string }, cmd: Command) => {
      const entries = await (
        await ctx.client()
      ).audit({
        since: opts.since === undefined ? undefined : parseSince(opts.since),
        limit: opts.limit === undefined ? undefined : Number(opts.limit),
        action: opts.action,
      });
      if (ctx.json(cmd)) return ctx.printJson(entries);
      ctx.print(
        renderTable(
          ["TIME", "ACTION", "RESULT", "TARGET", "KEY", "ADDRESS"],
          entries.map((e) => [
            formatRelative(e.time),
            e.action,
            e.result,
            e.target ?? "-",
            e.keyId ?? "-",
            e.remoteAddress ?? "-",
          ]),
        ),
      );
    });
}
