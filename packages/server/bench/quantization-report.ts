import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { QuantizationReport } from "./quantization-bench.js";

export const START = "<!-- bench:quantization:start -->";
export const END = "<!-- bench:quantization:end -->";

const mb = (b: number) => `${(b / 1e6).toFixed(b < 1e7 ? 2 : 1)} MB`;
const mib = (b: number) => `${(b / 1024 ** 2).toFixed(1)} MiB`;
const num = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "-");
const sci = (x: number | undefined) =>
  x === undefined ? "-" : x === 0 ? "0" : x < 1e-3 ? x.toExponential(2) : x.toFixed(4);

/** llama-perplexity's value and llmos's difference from it; beyond 1% in bold (the bound). */
function nativePpl(ours: number, theirs: number | undefined): string {
  if (theirs === undefined) return "-";
  const diff = (ours / theirs - 1) * 100;
  const text = `${num(theirs, 3)} (${diff >= 0 ? "+" : ""}${diff.toFixed(2)}%)`;
  return Math.abs(diff) > 1 ? `**${text}**` : text;
}

/** The measured tables, in Markdown (what goes between the markers of docs/quantization.md). */
export function renderQuantizationTables(r: QuantizationReport): string {
  const L: string[] = [];
  L.push(
    `Measured by \`npm run bench${r.quick ? " -- --quick" : ""}\` on ${r.date.slice(0, 10)} (${r.machine}, ${r.threads} threads), ` +
      `on \`${r.evalText}\`. Speed: a runner of llmos (llama-ffi, shipped CPU backend), a 128-token prompt then 64 ` +
      "generated tokens, greedy" +
      (r.quick ? "" : ", median of 3") +
      ". KLD: mean (and 99th percentile) KL divergence of each position's token distribution from the F16 model's, " +
      "in nats; top token: how often both put the same token first. These numbers are provisional until a run on " +
      "a quiet machine.",
    "",
  );
  for (const m of r.models) {
    L.push(`### ${m.model}`, "");
    L.push(`Context ${m.contextSize} tokens, ${m.chunks} chunks.`, "");
    const native = m.rows.some((x) => x.sameAsLlamaQuantize !== undefined || x.llamaPerplexity !== undefined);
    L.push(
      `| type | size | fallback tensors | prompt tok/s | generation tok/s | perplexity | KLD mean (p99) | top token |${native ? " = llama-quantize | llama-perplexity |" : ""}`,
    );
    L.push(`| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |${native ? " :---: | ---: |" : ""}`);
    for (const x of m.rows) {
      const kld = x.kld ? `${sci(x.kld.mean)} (${sci(x.kld.p99)})` : "base";
      const top = x.topTokenAgreement === undefined ? "-" : `${(x.topTokenAgreement * 100).toFixed(1)}%`;
      const nat = native
        ? ` ${x.sameAsLlamaQuantize === undefined ? "-" : x.sameAsLlamaQuantize ? "yes" : "**no**"} | ${nativePpl(x.perplexity, x.llamaPerplexity)} |`
        : "";
      L.push(
        `| ${x.type} | ${mb(x.bytes)} | ${x.fallbackTensors} | ${num(x.promptTps)} | ${num(x.generationTps)} | ${num(x.perplexity, 3)} | ${kld} | ${top} |${nat}`,
      );
    }
    L.push("");
  }
  if (r.kv) {
    L.push(`### KV cache types: ${r.kv.model}, ${r.kv.contextSize}-token context`, "");
    L.push(
      "| K and V cache | KV cache (estimate) | runner estimate | runner RSS | perplexity | KLD mean (p99) vs f16 | top token |",
    );
    L.push("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (const x of r.kv.rows) {
      L.push(
        `| ${x.type} | ${mib(x.kvCacheBytes)} | ${mib(x.estimatedBytes)} | ${mib(x.rssBytes)} | ${num(x.perplexity, 3)} | ${sci(x.kld.mean)} (${sci(x.kld.p99)}) | ${(x.topTokenAgreement * 100).toFixed(1)}% |`,
      );
    }
    L.push("");
  }
  return L.join("\n");
}

/** Replaces the measured section of `file` (between the markers), or appends one; the JSON goes beside it. */
export function writeQuantizationReport(file: string, r: QuantizationReport): void {
  const tables = `${START}\n${renderQuantizationTables(r)}\n${END}`;
  const text = existsSync(file) ? readFileSync(file, "utf8") : "# Quantization\n\n";
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  const next =
    a >= 0 && b > a ? text.slice(0, a) + tables + text.slice(b + END.length) : `${text.trimEnd()}\n\n${tables}\n`;
  writeFileSync(file, next);
  writeFileSync(file.replace(/\.md$/, ".json"), JSON.stringify(r, null, 2) + "\n");
}
