/**
 * The "Multi-model contention" section of docs/performance.md: which mixes are measured, the tables, and the
 * issue's targets checked against the run.
 */
import type { BusyModel, ContentionBench } from "./contention-bench.js";
import { summarize } from "./contention-bench.js";
import { fmt, fmtRatio, median, pairedRatio } from "./stats.js";

/**
 * The models and mixes measured: 2, 3 and 4 busy models (one busy model is the solo row of every model), mixing
 * stories260K, the 42M and 110M synthetic models, single streams and 4-stream batches. A second runner of the
 * same file stands in for a fourth model. `--quick` uses stories260K and the 42M model only.
 */
export function contentionMixes(
  files: Record<string, string>,
  quick: boolean,
): { models: Record<string, string>; mixes: BusyModel[][] } {
  const has = (n: string) => files[n] !== undefined;
  const big = !quick && has("llama-110m") ? "llama-110m" : undefined;
  const mid = has("llama-42m") ? "llama-42m" : "stories260K";
  const models: Record<string, string> = {
    stories260K: files["stories260K"]!,
    [mid]: files[mid]!,
    [`${mid}-b`]: files[mid]!,
    ...(big ? { [big]: files[big]! } : { "stories260K-b": files["stories260K"]! }),
  };
  const fourth = big ?? "stories260K-b";
  const mixes: BusyModel[][] = [
    [
      { model: mid, streams: 4 },
      { model: "stories260K", streams: 1 },
    ],
    ...(big
      ? [
          [
            { model: mid, streams: 1 },
            { model: big, streams: 1 },
          ],
        ]
      : []),
    [
      { model: "stories260K", streams: 1 },
      { model: mid, streams: 4 },
      { model: `${mid}-b`, streams: 1 },
    ],
    [
      { model: "stories260K", streams: 1 },
      { model: mid, streams: 4 },
      { model: `${mid}-b`, streams: 1 },
      { model: fourth, streams: big ? 4 : 1 },
    ],
  ];
  return { models, mixes };
}

const key = (b: BusyModel) => `${b.model} x${b.streams}`;

/** The best static split of a mix in each round (by aggregate share), and the scheduler's aggregate over it. */
function versusBestStatic(bench: ContentionBench, i: number): number | undefined {
  const mix = bench.mixes[i]!;
  const sched = summarize(bench, mix, "scheduled")?.aggregates;
  const statics = Object.keys(mix.variants)
    .filter((v) => v.startsWith("static "))
    .map((v) => summarize(bench, mix, v)!.aggregates);
  if (!sched || statics.length === 0) return undefined;
  const best = sched.map((_, r) => Math.max(...statics.map((s) => s[r] ?? -Infinity)));
  return pairedRatio(sched, best);
}

export function contentionTargets(bench: ContentionBench): Array<[string, string, boolean | undefined]> {
  const rows: Array<[string, string, boolean | undefined]> = [];
  bench.mixes.forEach((mix) => {
    if (mix.mix.length !== 2) return;
    for (const m of summarize(bench, mix, "scheduled")?.perModel ?? [])
      rows.push([
        `two busy (${mix.mix.map(key).join(" + ")}): ${m.model} >= 0.35x of solo`,
        fmtRatio(m.share),
        m.share >= 0.35,
      ]);
  });
  bench.mixes.forEach((mix, i) => {
    const r = versusBestStatic(bench, i);
    rows.push([
      `${mix.mix.length} busy (${mix.mix.map(key).join(" + ")}): aggregate >= 0.9x best static split`,
      fmtRatio(r),
      r === undefined ? undefined : r >= 0.9,
    ]);
  });
  for (const [k, solo] of Object.entries(bench.solo)) {
    const r = pairedRatio(bench.soloScheduled[k], solo);
    rows.push([
      `one busy model (${k}) >= 0.97x of every core without the scheduler`,
      fmtRatio(r),
      r === undefined ? undefined : r >= 0.97,
    ]);
  }
  const worst = bench.restoreMs.length ? Math.max(...bench.restoreMs) : undefined;
  rows.push([
    "a third model busy and idle again: the others' allotments back within 100 ms (slowest of the samples)",
    worst === undefined ? "n/a" : `${fmt(worst, 0)} ms`,
    worst === undefined ? undefined : worst <= 100,
  ]);
  return rows;
}

/** The section's Markdown lines. */
export function contentionSection(bench: ContentionBench): string[] {
  const L: string[] = [];
  L.push("## Multi-model contention", "");
  if (bench.provenance) L.push(`*${bench.provenance}*`, "");
  L.push(
    `${bench.cores} cores shared by up to ${Math.max(...bench.mixes.map((m) => m.mix.length))} busy models, ${bench.rounds} round(s), each variant busy for ${bench.windowMs} ms per round (streams of ${bench.tokens} tokens restarted as they end). *Share*: a model's tokens/s over its solo tokens/s (same streams, alone on every core, same round); *aggregate*: the sum of the shares (1.00 = one model's worth of solo throughput). Variants: *scheduled*: llmos decides the allotments; *scheduled, pinned*: the same with \`LLMOS_CPU_AFFINITY=on\`; *all threads each*: every runner keeps every core, as before the scheduler owned the CPU; *static a+b*: fixed thread counts; *time-sliced Q ms*: every core to one runner at a time, turns of Q ms granted by the benchmark over IPC (the others hold their decode steps).`,
    "",
  );
  L.push("One busy model (solo), tokens/s: alone on every core without the scheduler, and through the scheduler:", "");
  L.push("| model x streams | every core | scheduled | scheduled / every core |", "| --- | --- | --- | --- |");
  for (const [k, solo] of Object.entries(bench.solo)) {
    const sched = bench.soloScheduled[k];
    L.push(`| ${k} | ${fmt(median(solo))} | ${fmt(median(sched ?? []))} | ${fmtRatio(pairedRatio(sched, solo))} |`);
  }
  for (const [i, mix] of bench.mixes.entries()) {
    L.push("", `${mix.mix.length} busy: ${mix.mix.map(key).join(" + ")}`, "");
    L.push(
      `| variant | ${mix.mix.map((b) => `${key(b)} tokens/s (share)`).join(" | ")} | aggregate |`,
      `| --- | ${mix.mix.map(() => "---").join(" | ")} | --- |`,
    );
    for (const variant of Object.keys(mix.variants)) {
      const s = summarize(bench, mix, variant)!;
      L.push(
        `| ${variant} | ${s.perModel.map((m) => `${fmt(m.tps)} (${fmtRatio(m.share)})`).join(" | ")} | ${fmt(s.aggregate, 2)} |`,
      );
    }
    const r = versusBestStatic(bench, i);
    if (r !== undefined) L.push("", `Scheduled aggregate / best static split (paired by round): ${fmtRatio(r)}.`);
  }
  L.push("");
  L.push(
    `Allotments back after a third model's request: ${bench.restoreMs.length ? `median ${fmt(median(bench.restoreMs), 0)} ms, slowest ${fmt(Math.max(...bench.restoreMs), 0)} ms (${bench.restoreMs.length} samples; includes the 50 ms hold)` : "not measured"}. One allotment change while decoding: ${bench.switchMs.length ? `${fmt(median(bench.switchMs), 2)} ms in the runner (waiting for the step under way), ${fmt(median(bench.switchRoundTripMs), 2)} ms for a turn handed from one runner to the next over IPC (medians of ${bench.switchMs.length})` : "not measured"}.`,
  );
  L.push("", "| target | measured | met |", "| --- | --- | --- |");
  for (const [t, m, ok] of contentionTargets(bench))
    L.push(`| ${t} | ${m} | ${ok === undefined ? "n/a" : ok ? "yes" : "**no**"} |`);
  return L;
}
