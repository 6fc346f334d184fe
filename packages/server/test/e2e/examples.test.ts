import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { startTestDaemon, type TestDaemon } from "../support/daemon.js";
import { REPO_ROOT } from "../support/paths.js";

const run = promisify(execFile);

/** Whether `code` parses, checked here independently of the example's own checker. */
function parses(language: string, code: string): boolean {
  const dir = mkdtempSync(path.join(os.tmpdir(), "llmos-parse-"));
  try {
    const file = path.join(dir, language === "python" ? "x.py" : "x.mjs");
    writeFileSync(file, code);
    const [cmd, args] =
      language === "python" ? ["python3", ["-m", "py_compile", file]] : [process.execPath, ["--check", file]];
    return spawnSync(cmd!, args as string[]).status === 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const EXAMPLES = path.join(REPO_ROOT, "examples");

/**
 * The four example applications run as a user runs them (a child process on the SDK, one in Python) against one
 * daemon with the shared tiny model. The model writes nonsense, so the tests check structure: citations point at
 * real chunks, JSON matches its schema, the long document was split to fit the context, the syntax check is right.
 */
describe("examples/ against a daemon", () => {
  let d: TestDaemon;
  let tmp: string;
  const env = () => ({ ...process.env, LLMOS_HOST: d.url, PYTHONPATH: path.join(REPO_ROOT, "clients", "python") });
  const tsExample = async (file: string, args: string[]) => {
    const { stdout } = await run(
      process.execPath,
      ["--conditions=llmos-source", "--import", "tsx", path.join(EXAMPLES, file), ...args, "--json"],
      { env: env(), cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 },
    );
    return JSON.parse(stdout);
  };

  before(async () => {
    d = await startTestDaemon({ contextSize: 512 });
    tmp = os.tmpdir();
  });
  after(async () => d?.stop());

  test("support assistant: citations are real chunks of the documents, from the SQLite index", async () => {
    const index = path.join(tmp, `llmos-support-${process.pid}.db`);
    const r = await tsExample("support-assistant/main.ts", [
      "How do I return a kettle?",
      "--index",
      index,
      "--top",
      "3",
    ]);
    assert.equal(typeof r.answer, "string");
    assert.equal(r.citations.length, 3);
    const db = new Database(index, { readonly: true });
    try {
      assert.equal(r.indexed, (db.prepare("SELECT COUNT(*) AS n FROM chunks").get() as { n: number }).n);
      for (const c of r.citations) {
        const row = db.prepare("SELECT doc, text FROM chunks WHERE id = ?").get(c.chunkId) as {
          doc: string;
          text: string;
        };
        assert.ok(row, `${c.chunkId} is in the index`);
        assert.equal(row.text, c.text);
        const doc = readFileSync(path.join(EXAMPLES, "support-assistant", "docs", row.doc), "utf8").replace(
          /\s+/g,
          " ",
        );
        assert.ok(doc.includes(c.text.replace(/^[^:]*: /, "")), `${c.chunkId}'s text is in ${row.doc}`);
      }
      const scores = r.citations.map((c: { score: number }) => c.score);
      assert.deepEqual(
        scores,
        [...scores].sort((a, b) => b - a),
        "best first",
      );
    } finally {
      db.close();
    }
  });

  const checkTranslation = (r: any, text: string) => {
    assert.deepEqual(Object.keys(r).slice(0, 4), ["text", "language", "translation", "terms"]);
    assert.equal(r.text, text);
    assert.equal(r.language, "de");
    assert.ok(r.translation.length >= 1 && r.translation.length <= 400);
    // Exactly the glossary terms found in the text, fixed by the schema.
    assert.deepEqual(r.terms, [
      { source: "kettle", target: "Wasserkocher" },
      { source: "warranty", target: "Garantie" },
    ]);
    const missing = r.terms.filter((t: any) => !r.translation.toLowerCase().includes(t.target.toLowerCase()));
    assert.deepEqual(
      r.termsMissingFromTranslation,
      missing.map((t: any) => t.target),
    );
  };

  test("translation with a glossary (TypeScript): JSON matching the schema, the text's glossary terms", async () => {
    const text = "The kettle is under warranty.";
    checkTranslation(await tsExample("translate-glossary/main.ts", [text]), text);
  });

  test("translation with a glossary (Python client): the same structure", async () => {
    const text = "The kettle is under warranty.";
    const { stdout } = await run(
      "python3",
      [path.join(EXAMPLES, "translate-glossary", "translate.py"), text, "--json"],
      {
        env: env(),
        cwd: REPO_ROOT,
      },
    );
    checkTranslation(JSON.parse(stdout), text);
  });

  test("summary of a document longer than the context: every prompt fitted the context", async () => {
    const r = await tsExample("summarize-long/main.ts", ["--summary-tokens", "32"]);
    assert.equal(r.contextTokens, 512);
    assert.ok(r.documentTokens > 2 * r.contextTokens, `${r.documentTokens} tokens`);
    const first = r.steps.filter((s: any) => s.round === 1);
    assert.ok(first.length >= 3, `${first.length} chunks`);
    for (const s of r.steps) {
      assert.ok(s.chunkTokens <= r.budget, JSON.stringify(s));
      // Measured by the daemon: the prompt and the summary fitted one sequence's context.
      assert.ok(s.promptTokens + s.summaryTokens <= r.contextTokens, JSON.stringify(s));
      assert.ok(s.summaryTokens <= 32);
    }
    assert.ok(first.reduce((n: number, s: any) => n + s.chunkTokens, 0) >= r.documentTokens * 0.9, "the whole text");
    assert.equal(r.steps.filter((s: any) => s.round === r.rounds).length, 1);
    assert.equal(typeof r.summary, "string");
  });

  test("code generation: {language, code, explanation} as the schema says; the syntax check is right", async () => {
    for (const language of ["javascript", "python"]) {
      const r = await tsExample("codegen/main.ts", ["Add two numbers", "--language", language, "--attempts", "2"]);
      assert.deepEqual(Object.keys(r.result), ["language", "code", "explanation"]);
      assert.equal(r.result.language, language);
      assert.ok(r.result.code.length >= 1 && r.result.code.length <= 500);
      assert.ok(r.result.explanation.length <= 300);
      assert.ok(r.attempts.length >= 1 && r.attempts.length <= 2);
      assert.ok(r.ok || r.attempts.length === 2, "retried until the check passed or the attempts ran out");
      for (const a of r.attempts) assert.equal(a.syntax.ok, parses(language, a.answer.code), a.answer.code);
    }
    // The tiny model never writes valid code: the example's checker is also shown code that parses.
    const script = `import { checkSyntax } from "./examples/codegen/syntax-check.ts";
      console.log(JSON.stringify([checkSyntax("javascript", "export const add = (a, b) => a + b;"),
        checkSyntax("python", "def add(a, b):\\n    return a + b\\n")]));`;
    const { stdout } = await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: REPO_ROOT,
    });
    assert.deepEqual(
      JSON.parse(stdout).map((r: { ok: boolean }) => r.ok),
      [true, true],
    );
  });
});
