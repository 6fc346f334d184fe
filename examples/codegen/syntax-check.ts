import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** What a syntax check found: `ok`, or the checker's first error line. */
export interface SyntaxReport {
  checker: string;
  ok: boolean;
  error: string | null;
}

const CHECKERS: Record<string, { file: string; command: (file: string) => [string, string[]] }> = {
  javascript: { file: "snippet.mjs", command: (f) => [process.execPath, ["--check", f]] },
  python: { file: "snippet.py", command: (f) => ["python3", ["-m", "py_compile", f]] },
};

export const LANGUAGES = Object.keys(CHECKERS);

/** Parses (never runs) `code` with the language's own tool: `node --check`, `python3 -m py_compile`. */
export function checkSyntax(language: string, code: string): SyntaxReport {
  const checker = CHECKERS[language];
  if (!checker) throw new Error(`no syntax checker for ${language}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), "llmos-codegen-"));
  try {
    const file = path.join(dir, checker.file);
    writeFileSync(file, code);
    const [cmd, args] = checker.command(file);
    const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 30_000 });
    const name = `${path.basename(cmd)} ${args.slice(0, -1).join(" ")}`.trim();
    if (r.error) throw r.error;
    const error = (r.stderr || r.stdout).split("\n").find((l) => /Error|error/.test(l)) ?? null;
    return { checker: name, ok: r.status === 0, error: r.status === 0 ? null : (error ?? `exit ${r.status}`) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
