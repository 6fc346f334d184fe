/**
 * Code generation with a JSON answer {language, code, explanation} (its shape guaranteed by a JSON schema), whose
 * code is then syntax-checked with the language's own parser; a failed check is retried with another seed.
 *
 *   node --import tsx examples/codegen/main.ts "Write a function that adds two numbers" [--language javascript|python]
 *        [--attempts N] [--json]
 */
import { parseArgs } from "node:util";
import { Client } from "llmos";
import { checkSyntax, LANGUAGES, type SyntaxReport } from "./syntax-check.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: "string", default: "stories" },
    language: { type: "string", default: "javascript" },
    attempts: { type: "string", default: "3" },
    json: { type: "boolean", default: false },
  },
});
const task = positionals.join(" ") || "Write a function that adds two numbers.";
if (!LANGUAGES.includes(values.language)) throw new Error(`--language must be one of ${LANGUAGES.join(", ")}`);

interface Answer {
  language: string;
  code: string;
  explanation: string;
}
const ANSWER_SCHEMA = {
  type: "object",
  properties: {
    language: { const: values.language },
    code: { type: "string", minLength: 1, maxLength: 500 }, // 500: the most a grammar spells out
    explanation: { type: "string", maxLength: 300 },
  },
  required: ["language", "code", "explanation"],
  additionalProperties: false,
};

const model = new Client().model(values.model);
const attempts: Array<{ seed: number; answer: Answer; syntax: SyntaxReport }> = [];
for (let seed = 1; seed <= Number(values.attempts); seed++) {
  const answer = await model.generateObject<Answer>(
    [
      { role: "system", content: `You write ${values.language} code. Answer with the code and a short explanation.` },
      { role: "user", content: task },
    ],
    { schema: ANSWER_SCHEMA, name: "code_answer", maxTokens: 400, temperature: 0.8, seed },
  );
  const syntax = checkSyntax(answer.language, answer.code);
  attempts.push({ seed, answer, syntax });
  if (syntax.ok) break;
}
const last = attempts[attempts.length - 1]!;
const report = {
  task,
  language: values.language,
  ok: last.syntax.ok,
  result: last.answer,
  syntax: last.syntax,
  attempts,
};

if (values.json) console.log(JSON.stringify(report, null, 2));
else {
  console.log(`// ${task} (${values.language}, ${attempts.length} attempt(s))\n${last.answer.code}\n`);
  console.log(`Explanation: ${last.answer.explanation}`);
  console.log(`Syntax (${last.syntax.checker}): ${last.syntax.ok ? "ok" : `error: ${last.syntax.error}`}`);
}
