import type { Command } from "commander";
import type { CliContext } from "../context.js";

/** `llmos verify`: re-hashes every blob of the store and reports (and quarantines) corrupt ones. */
export function registerVerify(program: Command, ctx: CliContext): void {
  program
    .command("verify")
    .description("check every model blob against its digest")
    .action(async (_opts: unknown, cmd: Command) => {
      const report = await (await ctx.client()).verify();
      if (ctx.json(cmd)) return ctx.printJson(report);
      ctx.print(`checked ${report.checked} blob${report.checked === 1 ? "" : "s"}: ${report.corrupt.length} corrupt`);
      for (const c of report.corrupt) {
        ctx.print(`  ${c.digest} (used by ${c.models.join(", ") || "no model"}) moved to ${c.quarantinedTo}`);
      }
      if (report.corrupt.length) process.exitCode = 1;
    });
}
