/**
 * `npm run trace -- <command>`: the trace tools on their own.
 *
 *   generate --preset mixed|poisson --models a,b,c,d,e,f [--seed 1] [--duration 180] [--out trace.jsonl]
 *   validate trace.jsonl                      re-measures its parameters against its header
 *   simulate trace.jsonl --policy histogram [--calibration docs/keep-alive.json] [--budget-models 3]
 *   replay trace.jsonl --url http://127.0.0.1:11435 [--speed 1]
 *
 * `simulate` takes the models' sizes, load waits and speeds from a benchmark report (docs/keep-alive.json).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { KEEP_POLICY_NAMES, type KeepPolicyName } from "@llmos/protocol";
import { percentile } from "../stats.js";
import type { KeepAliveReport } from "./keep-alive-bench.js";
import { replay } from "./replayer.js";
import type { SimModel } from "./sim-runtime.js";
import { simulate } from "./simulator.js";
import { parseTrace, serializeTrace, TraceError } from "./trace-format.js";
import { generateTrace } from "./trace-generator.js";
import { mixedSpec, poissonSpec, scaledKeepAliveMs } from "./trace-presets.js";
import { validateTrace } from "./trace-validator.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    preset: { type: "string", default: "mixed" },
    models: { type: "string" },
    seed: { type: "string", default: "1" },
    duration: { type: "string", default: "180" },
    out: { type: "string" },
    policy: { type: "string", default: "histogram" },
    calibration: { type: "string", default: "docs/keep-alive.json" },
    "budget-models": { type: "string", default: "3" },
    url: { type: "string", default: "http://127.0.0.1:11435" },
    speed: { type: "string", default: "1" },
  },
});

async function main(): Promise<number> {
  const [command, file] = positionals;
  switch (command) {
    case "generate": {
      const models = (values.models ?? "").split(",").filter(Boolean);
      const durationMs = Number(values.duration) * 1000;
      const make = values.preset === "poisson" ? poissonSpec : mixedSpec;
      const trace = generateTrace(make({ seed: Number(values.seed), durationMs, models }));
      const text = serializeTrace(trace);
      if (values.out) writeFileSync(values.out, text);
      else process.stdout.write(text);
      process.stderr.write(`${trace.requests.length} requests over ${durationMs / 1000}s\n`);
      return 0;
    }
    case "validate": {
      const rows = validateTrace(read(file));
      for (const p of rows)
        console.log(
          `${p.ok ? "ok  " : "FAIL"} ${p.parameter.padEnd(28)} asked ${fmt(p.asked)} measured ${fmt(p.measured)} (${(100 * p.error).toFixed(1)}%, ${p.samples} samples)`,
        );
      return rows.every((p) => p.ok) ? 0 : 1;
    }
    case "simulate": {
      const trace = read(file);
      const policy = values.policy as KeepPolicyName;
      if (!KEEP_POLICY_NAMES.includes(policy)) throw new Error(`--policy: one of ${KEEP_POLICY_NAMES.join(", ")}`);
      const cal = JSON.parse(readFileSync(values.calibration!, "utf8")) as Pick<KeepAliveReport, "models">;
      const byName = new Map(cal.models.map((m) => [m.name, m]));
      const fallback = cal.models.at(-1)!;
      const models: SimModel[] = trace.spec.models.map((m) => ({ ...(byName.get(m.name) ?? fallback), name: m.name }));
      const biggest = Math.max(...models.map((m) => m.bytes));
      const r = await simulate({
        trace,
        models,
        policy,
        keepAliveMs: scaledKeepAliveMs(trace.spec),
        memoryBudgetBytes: Number(values["budget-models"]) * biggest + 1,
        parallel: 4,
      });
      const ttft = r.ttftMs.filter(Number.isFinite);
      console.log(
        JSON.stringify(
          {
            policy: r.policy,
            requests: r.requests,
            coldStarts: r.coldStarts,
            ttftP50Ms: percentile(ttft, 50),
            ttftP99Ms: percentile(ttft, 99),
            idleGiBs: r.idleByteSeconds / 1024 ** 3,
            prewarm: r.prewarm,
            wallMs: Math.round(r.wallMs),
          },
          null,
          2,
        ),
      );
      return 0;
    }
    case "replay": {
      const trace = read(file);
      const tags = (await (await fetch(`${values.url}/api/tags`)).json()) as { models: Array<{ name: string }> };
      const known = new Set(tags.models.flatMap((m) => [m.name, m.name.replace(/:latest$/, "")]));
      const checked = parseTrace(readFileSync(file!, "utf8"), known);
      const r = await replay({
        trace: checked,
        url: values.url!,
        speed: Number(values.speed),
        progress: { everyMs: 10_000, log: (l) => process.stderr.write(`${l}\n`) },
      });
      const ttft = r.ttftMs.filter(Number.isFinite);
      console.log(
        JSON.stringify(
          {
            requests: trace.requests.length,
            failed: r.failed,
            ttftP50Ms: percentile(ttft, 50),
            ttftP99Ms: percentile(ttft, 99),
            errors: r.errors,
          },
          null,
          2,
        ),
      );
      return r.failed === 0 ? 0 : 1;
    }
    default:
      process.stderr.write(
        "usage: npm run trace -- generate|validate|simulate|replay ... (see bench/keep-alive/trace-cli.ts)\n",
      );
      return 2;
  }
}

function read(file: string | undefined) {
  if (!file) throw new Error("which trace file?");
  return parseTrace(readFileSync(file, "utf8"));
}

function fmt(x: number): string {
  return Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(3);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof TraceError ? "invalid trace: " : ""}${(error as Error).message}\n`);
    process.exit(1);
  },
);
