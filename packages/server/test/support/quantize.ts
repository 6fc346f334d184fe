import path from "node:path";
import { ensureSynthModels } from "@llmos/gguf";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { api, type TestDaemon } from "./daemon.js";
import { REPO_ROOT, TINY_RANDOM } from "./paths.js";
import { SYNTH_DIR } from "./synth.js";

/** The public-domain evaluation text shipped with the CLI. */
export const EVAL_TEXT_FILE = path.join(REPO_ROOT, "packages", "cli", "data", "eval-text.txt");
export const EVAL_TEXT = readFileSync(EVAL_TEXT_FILE, "utf8");

/** The synthetic 42M F16 model the benchmark uses (32k Llama 2 vocabulary), written once into .cache/models. */
export async function synth42m(): Promise<string> {
  const [model] = await ensureSynthModels({ outDir: SYNTH_DIR, only: ["llama-42m"], tokenizerSource: TINY_RANDOM });
  return model!.path;
}

/** Pids of the live child processes of this process running the model-tool worker. */
export function toolWorkerPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== process.pid) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes("model-tool-worker")) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Reads an NDJSON response body line by line. */
export async function* ndjsonLines(res: Response): AsyncGenerator<any> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line) yield JSON.parse(line);
    }
  }
  if (buffered.trim()) yield JSON.parse(buffered);
}

/** Starts an eval or imatrix job through the jobs API and follows its events to the end; returns the final view. */
export async function runJob(d: TestDaemon, kind: "eval" | "imatrix", body: Record<string, unknown>): Promise<any> {
  const started = await api(d, "POST", `/api/jobs/${kind}`, body);
  assert.equal(started.status, 202, started.text);
  const res = await fetch(`${d.url}/api/jobs/${started.json.id}/events`);
  let last: any;
  for await (const view of ndjsonLines(res)) last = view;
  return last;
}
