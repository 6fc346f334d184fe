/**
 * Translation with a glossary and JSON-schema output: the glossary terms found in the text are fixed in the output
 * schema, the model writes the translation, and the result is checked for each term's required translation.
 *
 *   node --import tsx examples/translate-glossary/main.ts "Descaling keeps the kettle under warranty." [--json]
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { Client } from "llmos";
import { termsIn, translationSchema, type Glossary } from "./schema.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    glossary: { type: "string", default: path.join(import.meta.dirname, "glossary.json") },
    model: { type: "string", default: "stories" },
    seed: { type: "string", default: "1" },
    json: { type: "boolean", default: false },
  },
});
const text = positionals.join(" ") || "Descaling keeps the kettle under warranty.";
const glossary = JSON.parse(readFileSync(values.glossary, "utf8")) as Glossary;
const terms = termsIn(text, glossary);
const schema = translationSchema(glossary, terms);

const model = new Client().model(values.model);
const result = await model.generateObject<{ language: string; translation: string; terms: typeof terms }>(
  [
    {
      role: "system",
      content: `Translate from ${glossary.source} to ${glossary.target}. Use these terms: ${terms.map((t) => `${t.source} = ${t.target}`).join("; ")}.`,
    },
    { role: "user", content: text },
  ],
  { schema, name: "translation", maxTokens: 300, temperature: 0.7, seed: Number(values.seed) },
);
// The schema guarantees the shape; whether the model used each term is checked here.
const missing = result.terms.filter((t) => !result.translation.toLowerCase().includes(t.target.toLowerCase()));
const report = { text, ...result, termsMissingFromTranslation: missing.map((t) => t.target), schema };

if (values.json) console.log(JSON.stringify(report, null, 2));
else {
  console.log(`${glossary.source}: ${text}\n${glossary.target}: ${result.translation}`);
  for (const t of result.terms) console.log(`  ${t.source} -> ${t.target}${missing.includes(t) ? "  (missing!)" : ""}`);
}
