import type { Command } from "commander";
import type { EvalReport, KvCacheType } from "llmos";
import type { CliContext } from "../context.js";
import { followJob, requireSuccess } from "../job-progress.js";
import { evalText } from "./eval-text.js";

interface EvalFlags {
  text?: string;
  base?: string;
  ctx: string;
  chunks?: string;
  kvCacheType?: KvCacheType;
  baseKvCacheType?: KvCacheType;
}

/**
 * `llmos eval <model> [--text file] [--base model] [--ctx 128]`: perplexity over a text in llama-perplexity's
 * chunks, and with --base the KL divergence of the model's token distributions from the base's (mean, median,
 * 99th percentile, max) and how often their top tokens agree. A job on the daemon, with progress.
 */
export function registerEval(program: Command, ctx: CliContext): void {
  program
    .command("eval")
    .description("measure a model's perplexity over a text, and its KL divergence from a base model")
    .argument("<model>", "the model to evaluate")
    .option("--text <file>", "UTF-8 text to evaluate on (default: the public-domain text shipped with llmos)")
    .option("--base <model>", "compare with this model (same vocabulary), e.g. the F16 original")
    .option("--ctx <tokens>", "tokens per chunk (the second half of each is scored)", "128")
    .option("--chunks <n>", "evaluate at most this many chunks")
    .option("--kv-cache-type <type>", "K and V cache type of the model's context: f16, q8_0 or q4_0")
    .option("--base-kv-cache-type <type>", "K and V cache type of the base's context (default f16)")
    .action(async (model: string, opts: EvalFlags, cmd: Command) => {
      const client = await ctx.client();
      const json = ctx.json(cmd);
      const { text } = evalText(opts.text);
      const job = await client.jobs.eval({
        model,
        text,
        contextSize: Number(opts.ctx),
        ...(opts.base !== undefined ? { base: opts.base } : {}),
        ...(opts.chunks !== undefined ? { maxChunks: Number(opts.chunks) } : {}),
        ...(opts.kvCacheType !== undefined ? { kvCacheType: opts.kvCacheType } : {}),
        ...(opts.baseKvCacheType !== undefined ? { baseKvCacheType: opts.baseKvCacheType } : {}),
      });
      const done = await followJob(ctx, client, job, json);
      requireSuccess(done);
      if (!json) printReport(ctx, done.result as EvalReport);
    });
}

const f = (x: number, digits = 4) => (Math.abs(x) >= 100 ? x.toFixed(2) : x.toPrecision(digits));

function printReport(ctx: CliContext, r: EvalReport): void {
  const kv = (t: string | undefined) => (t && t !== "f16" ? `, KV cache ${t}` : "");
  const rows: Array<[string, string]> = [
    ["model", `${r.model}${kv(r.kvCacheType)}`],
    ...(r.base ? ([["base", `${r.base}${kv(r.baseKvCacheType)}`]] as Array<[string, string]>) : []),
    ["context", `${r.contextSize} tokens x ${r.chunks} chunks, ${r.tokens} positions scored`],
    ["perplexity", f(r.perplexity)],
  ];
  if (r.basePerplexity !== undefined && r.perplexityRatio !== undefined) {
    rows.push(["base perplexity", f(r.basePerplexity)]);
    rows.push(["perplexity ratio", r.perplexityRatio.toFixed(4)]);
  }
  if (r.kld) {
    rows.push(["KLD mean", f(r.kld.mean)]);
    rows.push(["KLD median", f(r.kld.median)]);
    rows.push(["KLD 99th pct", f(r.kld.p99)]);
    rows.push(["KLD max", f(r.kld.max)]);
  }
  if (r.topTokenAgreement !== undefined) rows.push(["same top token", `${(r.topTokenAgreement * 100).toFixed(2)}%`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) ctx.print(`  ${k.padEnd(width)}   ${v}`);
}
