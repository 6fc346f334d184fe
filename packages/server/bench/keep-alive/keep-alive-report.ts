/**
 * The keep-alive section of docs/performance.md (between its markers; `npm run bench` keeps it when it rewrites the
 * rest of the file) and docs/keep-alive.json: the traces' validation, replays and simulations per policy, the
 * simulator against the replays, and the acceptance checks of the learned keep-alive.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { median } from "../stats.js";
import type { KeepAliveReport, PolicyRun, TraceKind } from "./keep-alive-bench.js";

export const START = "<!-- bench:keep-alive:start -->";
export const END = "<!-- bench:keep-alive:end -->";

/** The median run of a policy on a trace (replayed or simulated), field by field over its repetitions. */
export function medianRun(runs: readonly PolicyRun[], trace: TraceKind, policy: string, kind: PolicyRun["kind"]) {
  const rs = runs.filter((r) => r.trace === trace && r.policy === policy && r.kind === kind);
  if (rs.length === 0) return undefined;
  const m = (f: (r: PolicyRun) => number) => median(rs.map(f));
  return {
    runs: rs.length,
    requests: rs[0]!.requests,
    coldStarts: m((r) => r.coldStarts),
    coldOwnRunner: m((r) => r.coldOwnRunner ?? NaN),
    ttftP50Ms: m((r) => r.ttftP50Ms),
    ttftP99Ms: m((r) => r.ttftP99Ms),
    idleGiBs: m((r) => r.idleGiBs),
    prewarmUsed: m((r) => r.prewarm.used),
    prewarmWasted: m((r) => r.prewarm.wasted),
    prewarmFailed: m((r) => r.prewarm.failed),
    loads: m((r) => r.loads),
    evictions: m((r) => r.evictions),
    violations: rs.reduce((n, r) => n + r.violations.length, 0),
    failed: rs.reduce((n, r) => n + r.failed, 0),
  };
}

export interface Check {
  what: string;
  ok: boolean | null;
  detail: string;
}

/** The issue's acceptance checks, from measured runs (null: not measured in this run). */
export function acceptance(r: KeepAliveReport): Check[] {
  const checks: Check[] = [];
  const params = [...r.validation.mixed.parameters, ...r.validation.poisson.parameters];
  const worst = params.reduce((w, p) => (p.error > w.error ? p : w), params[0]!);
  checks.push({
    what: "1. same seed, same trace; every parameter within 10%",
    ok: r.deterministic && params.every((p) => p.ok),
    detail: `${r.deterministic ? "identical bytes" : "traces differ"}; worst: ${worst.parameter} ${pct(worst.error)}`,
  });
  const pick = (trace: TraceKind, policy: string) =>
    medianRun(r.runs, trace, policy, "replay") ?? medianRun(r.runs, trace, policy, "simulated");
  const kindOf = (trace: TraceKind, policy: string) =>
    medianRun(r.runs, trace, policy, "replay") ? "replayed" : "simulated";
  const fixed = pick("mixed", "fixed");
  const hist = pick("mixed", "histogram");
  if (fixed && hist) {
    checks.push({
      what: "2a. mixed: histogram >= 30% fewer cold starts than fixed",
      ok: hist.coldStarts <= 0.7 * fixed.coldStarts,
      detail: `${hist.coldStarts} vs ${fixed.coldStarts} (${pct(1 - hist.coldStarts / fixed.coldStarts)} fewer, ${kindOf("mixed", "histogram")})`,
    });
    checks.push({
      what: "2b. mixed: at <= 105% of fixed's idle memory-seconds",
      ok: hist.idleGiBs <= 1.05 * fixed.idleGiBs,
      detail: `${hist.idleGiBs.toFixed(1)} vs ${fixed.idleGiBs.toFixed(1)} GiB-s (${pct(hist.idleGiBs / fixed.idleGiBs)})`,
    });
    checks.push({
      what: "2c. mixed: p99 time to first token >= 20% lower",
      ok: hist.ttftP99Ms <= 0.8 * fixed.ttftP99Ms,
      detail: `${hist.ttftP99Ms.toFixed(0)} vs ${fixed.ttftP99Ms.toFixed(0)} ms (${pct(1 - hist.ttftP99Ms / fixed.ttftP99Ms)} lower)`,
    });
  }
  const lru = pick("poisson", "lru");
  for (const learned of ["gdsf", "histogram"]) {
    const l = pick("poisson", learned);
    if (lru && l)
      checks.push({
        what: `3. poisson: ${learned} at most 5% more cold starts than lru`,
        ok: l.coldStarts <= 1.05 * lru.coldStarts,
        detail: `${l.coldStarts} vs ${lru.coldStarts} (${kindOf("poisson", learned)})`,
      });
  }
  const pairs = (["mixed", "poisson"] as const).flatMap((trace) =>
    ["fixed", "lru", "gdsf", "histogram"].flatMap((policy) => {
      const real = medianRun(r.runs, trace, policy, "replay");
      const sim = medianRun(r.runs, trace, policy, "simulated");
      return real && sim ? [{ trace, policy, real: real.coldStarts, sim: sim.coldStarts }] : [];
    }),
  );
  if (pairs.length > 0)
    checks.push({
      what: "4. simulated cold starts within 15% of the replay's",
      ok: pairs.every((p) => Math.abs(p.sim - p.real) <= 0.15 * Math.max(1, p.real)),
      detail: pairs.map((p) => `${p.trace}/${p.policy} ${p.sim} vs ${p.real}`).join("; "),
    });
  const violations = r.runs.reduce((n, run) => n + run.violations.length, 0);
  checks.push({
    what: "5. no pin or request keep-alive violated; the usage model survives a restart",
    ok: violations === 0 && (r.restart.learnedAfterRestart?.startsWith("learned") ?? false),
    detail: `${violations} violations over ${r.runs.length} runs; after a restart: ${r.restart.learnedAfterRestart ?? "no plan"} (${r.restart.models} models, ${r.restart.gapsBefore} idle gaps stored)`,
  });
  return checks;
}

export function renderKeepAlive(r: KeepAliveReport): string {
  const L: string[] = [];
  const GiB = 1024 ** 3;
  L.push("## 8. Keep-alive policies: learned keep-alive and prewarming", "");
  L.push(
    `Measured by \`npm run bench:keep-alive${r.quick ? " -- --quick" : ""}\` (part of \`npm run bench\`) on ${r.date.slice(0, 10)}. Six models: stories260K (pinned) and five copies of the 42M Q8_0 model with different seeds, ${r.models.length > 1 ? "4 slots of 512 tokens each" : ""}; memory budget ${(r.budgetBytes / GiB).toFixed(2)} GiB: the pinned model and three others. Traces of ${r.durationMs / 1000} s, time compressed ${r.timeScale}x (a trace second stands for a minute; one diurnal cycle per trace): the fixed keep-alive of 5 minutes is ${r.keepAliveMs / 1000} s. Learned policies start from the usage store of a learning replay of another seed of the same trace. Cold start: a request that waited for its model to load. Idle memory: memory of loaded models serving nothing, integrated over the trace.`,
    "",
  );
  L.push("Models as calibrated on this machine (what the simulator uses):", "");
  L.push("| model | reserves | load wait, ms | prompt tokens/s | tokens/s |", "| --- | --- | --- | --- | --- |");
  for (const m of r.models)
    L.push(
      `| ${m.name} | ${(m.bytes / 1024 ** 2).toFixed(0)} MiB | ${m.loadMs.toFixed(0)} | ${m.promptTokensPerSecond.toFixed(0)} | ${m.tokensPerSecond.toFixed(0)} |`,
    );
  L.push("");
  if (r.learning) {
    const show = (x: { coldStarts: number; ttftP50Ms: number; ttftP99Ms: number }) =>
      `${x.coldStarts} cold starts, time to first token p50 ${x.ttftP50Ms.toFixed(0)} ms, p99 ${x.ttftP99Ms.toFixed(0)} ms`;
    L.push(
      `The simulator against the learning replay (the mixed trace of another seed, histogram from an empty store): replayed ${show(r.learning.replay)}; simulated ${show(r.learning.simulated)}.`,
      "",
    );
  }
  L.push("Acceptance:", "");
  L.push("| check | result | measured |", "| --- | --- | --- |");
  for (const c of acceptance(r))
    L.push(`| ${c.what} | ${c.ok === null ? "n/a" : c.ok ? "pass" : "FAIL"} | ${c.detail} |`);
  L.push("");
  for (const trace of ["mixed", "poisson"] as const) {
    L.push(
      `**${trace === "mixed" ? "Mixed trace" : "Poisson trace (no structure)"}**, median of the replays (runs in parentheses), then the simulator:`,
      "",
    );
    L.push(
      "| policy | run | requests | cold starts | of which started a runner | TTFT p50, ms | TTFT p99, ms | idle GiB-s | prewarms used / wasted / failed | loads | evictions | violations |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const kind of ["replay", "simulated"] as const)
      for (const policy of ["fixed", "lru", "gdsf", "histogram"]) {
        const m = medianRun(r.runs, trace, policy, kind);
        if (!m) continue;
        L.push(
          `| ${policy} | ${kind === "replay" ? `replay (${m.runs})` : "simulated"} | ${m.requests} | ${m.coldStarts} | ${Number.isNaN(m.coldOwnRunner) ? "" : m.coldOwnRunner} | ${m.ttftP50Ms.toFixed(0)} | ${m.ttftP99Ms.toFixed(0)} | ${m.idleGiBs.toFixed(1)} | ${m.prewarmUsed} / ${m.prewarmWasted} / ${m.prewarmFailed} | ${m.loads} | ${m.evictions} | ${m.violations} |`,
        );
      }
    L.push("");
  }
  L.push(
    `The simulator ran a whole day at this compression (${r.simulatedDay.requests} requests over ${(r.simulatedDay.simulatedMs / 60_000).toFixed(0)} simulated minutes) in ${(r.simulatedDay.wallMs / 1000).toFixed(1)} s.`,
    "",
  );
  L.push("Trace validation (a trace of 100 compressed days of each kind):", "");
  L.push("| trace | parameter | asked | measured | error | samples |", "| --- | --- | --- | --- | --- | --- |");
  for (const trace of ["mixed", "poisson"] as const)
    for (const p of r.validation[trace].parameters)
      L.push(
        `| ${trace} | ${p.parameter} | ${num(p.asked)} | ${num(p.measured)} | ${pct(p.error)}${p.ok ? "" : " (over 10%)"} | ${p.samples} |`,
      );
  L.push("");
  return L.join("\n");
}

/** Replaces the section between the markers of `file` (or appends it); the JSON goes to `json`. */
export function writeKeepAliveReport(file: string, json: string, r: KeepAliveReport): void {
  const block = `${START}\n${renderKeepAlive(r)}\n${END}`;
  mkdirSync(path.dirname(file), { recursive: true });
  const text = existsSync(file) ? readFileSync(file, "utf8") : "# Performance\n";
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  const next =
    start >= 0 && end > start
      ? text.slice(0, start) + block + text.slice(end + END.length)
      : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, next);
  writeFileSync(json, JSON.stringify(r, null, 2) + "\n");
}

/** The keep-alive section of `file` with its markers, to carry over when the rest of the file is rewritten. */
export function keptSection(file: string): string | undefined {
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, "utf8");
  const start = text.indexOf(START);
  const end = text.indexOf(END);
  return start >= 0 && end > start ? text.slice(start, end + END.length) : undefined;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

function num(x: number): string {
  return Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(3);
}
