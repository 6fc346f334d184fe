/**
 * Summarises a document longer than the model's context by map-reduce: the document is split into chunks whose
 * prompt (instructions + chunk) plus the summary's tokens fit the context, measured with the daemon's tokenizer;
 * each chunk is summarised (map), and the summaries are joined and summarised again until one fits (reduce).
 *
 *   node --import tsx examples/summarize-long/main.ts [FILE] [--model NAME] [--summary-tokens N] [--json]
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { Client } from "llmos";
import { splitToBudget } from "./chunker.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: "string", default: "stories" },
    "summary-tokens": { type: "string", default: "48" },
    json: { type: "boolean", default: false },
  },
});
const file = positionals[0] ?? path.join(import.meta.dirname, "lighthouse.md");
const document = readFileSync(file, "utf8");
const summaryTokens = Number(values["summary-tokens"]);

const client = new Client();
const model = await client.loadModel(values.model);
// The context one request can use: the loaded model's context per sequence.
const fullName = (await client.show(values.model)).name;
const loaded = (await client.ps()).models.find((m) => m.name === fullName);
if (!loaded) throw new Error(`${values.model} is not loaded`);
const contextTokens = loaded.contextSize;

const instructions = "Summarise the following text in two sentences.";
const count = async (text: string) => (await client.tokenize(values.model, text)).length;
// The chat template adds a few tokens around the messages; measure them once on an empty chat.
const overhead = (await model.chat([{ role: "user", content: "" }], { maxTokens: 1 })).usage!.promptTokens;
const budget = contextTokens - overhead - (await count(instructions)) - summaryTokens - 8;
if (budget < 32) throw new Error(`the context (${contextTokens} tokens) is too small to summarise in`);

interface Step {
  round: number;
  chunk: number;
  chunkTokens: number;
  promptTokens: number;
  summaryTokens: number;
}
const steps: Step[] = [];

async function summarise(text: string, round: number, chunk: number): Promise<string> {
  const r = await model.chat(
    [
      { role: "system", content: instructions },
      { role: "user", content: text },
    ],
    { maxTokens: summaryTokens, temperature: 0 },
  );
  steps.push({
    round,
    chunk,
    chunkTokens: await count(text),
    promptTokens: r.usage!.promptTokens,
    summaryTokens: r.usage!.completionTokens,
  });
  return r.text.trim();
}

const documentTokens = await count(document);
let pieces = await splitToBudget(document, budget, count);
let round = 0;
let summary = "";
for (;;) {
  round++;
  const summaries: string[] = [];
  for (const [i, piece] of pieces.entries()) summaries.push(await summarise(piece, round, i));
  if (summaries.length === 1) {
    summary = summaries[0]!;
    break;
  }
  // Reduce: the joined summaries, split again if they do not fit one prompt.
  pieces = await splitToBudget(summaries.join("\n\n"), budget, count);
  if (pieces.length >= summaries.length) pieces = [summaries.join("\n\n").slice(0, budget)]; // cannot shrink: stop
}

const report = { file, contextTokens, documentTokens, budget, overhead, summaryTokens, rounds: round, steps, summary };
if (values.json) console.log(JSON.stringify(report, null, 2));
else {
  console.log(`${path.basename(file)}: ${documentTokens} tokens; context ${contextTokens}; chunks of <= ${budget}`);
  for (const s of steps)
    console.log(`  round ${s.round} chunk ${s.chunk}: ${s.promptTokens} prompt tokens -> ${s.summaryTokens}`);
  console.log(`\nSummary: ${summary}`);
}
