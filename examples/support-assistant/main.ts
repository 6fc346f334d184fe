/**
 * A support assistant that answers from a folder of documents: the documents are split into chunks, embedded by
 * llmos and kept in a small vector index in SQLite; a question retrieves the closest chunks, which go to the chat
 * model as numbered sources; the answer comes back with citations that point at those chunks.
 *
 *   node --import tsx examples/support-assistant/main.ts "How do I return a kettle?" [--docs DIR] [--model NAME]
 *        [--index FILE] [--top K] [--json]
 */
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { Client } from "llmos";
import { chunkFolder } from "./chunks.js";
import { VectorIndex, type Hit } from "./vector-index.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    docs: { type: "string", default: path.join(import.meta.dirname, "docs") },
    model: { type: "string", default: "stories" },
    index: { type: "string", default: path.join(os.tmpdir(), "llmos-support-index.db") },
    top: { type: "string", default: "3" },
    "max-tokens": { type: "string", default: "80" },
    json: { type: "boolean", default: false },
  },
});
const question = positionals.join(" ") || "How do I return a kettle?";

const client = new Client();
const model = client.model(values.model);

// Index: one embedding per chunk, stored with the chunk in SQLite.
const chunks = chunkFolder(values.docs);
const vectors = (await model.embed(chunks.map((c) => c.text))) as number[][];
const index = new VectorIndex(values.index);
index.replace(chunks, vectors);

// Retrieve, then answer from the numbered sources.
const [queryVector] = (await model.embed([question])) as number[][];
const hits: Hit[] = index.search(queryVector!, Number(values.top));
const sources = hits.map((h, i) => `[${i + 1}] (${h.doc}) ${h.text}`).join("\n");
const reply = await model.chat(
  [
    {
      role: "system",
      content: `You are a support assistant. Answer only from these sources and cite them as [n].\n${sources}`,
    },
    { role: "user", content: question },
  ],
  { maxTokens: Number(values["max-tokens"]), temperature: 0 },
);
const cited = new Set([...reply.text.matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1])));
const citations = hits.map((h, i) => ({
  n: i + 1,
  chunkId: h.id,
  doc: h.doc,
  score: Number(h.score.toFixed(4)),
  text: h.text,
  citedInAnswer: cited.has(i + 1),
}));
const report = { question, answer: reply.text, citations, indexed: index.count(), usage: reply.usage };
index.close();

if (values.json) console.log(JSON.stringify(report, null, 2));
else {
  console.log(`Q: ${question}\nA: ${reply.text.trim()}\n\nSources:`);
  for (const c of citations) console.log(`  [${c.n}] ${c.chunkId} (score ${c.score}): ${c.text.slice(0, 80)}...`);
}
