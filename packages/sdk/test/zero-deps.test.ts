import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../src");

test("the SDK imports nothing at run time but its own files (types only from @llmos/protocol)", () => {
  const offenders: string[] = [];
  for (const file of fs.readdirSync(SRC).filter((f) => f.endsWith(".ts"))) {
    const text = fs.readFileSync(path.join(SRC, file), "utf8");
    // Each import/export ... from "x" statement, possibly spanning lines.
    for (const m of text.matchAll(/^(import|export)\s+([^;]*?)\s+from\s+"([^"]+)"/gms)) {
      const [, , clause, specifier] = m;
      const typeOnly = /^type\s/.test(clause!);
      if (!specifier!.startsWith("./") && !typeOnly) offenders.push(`${file}: ${m[0].split("\n")[0]}`);
    }
    for (const m of text.matchAll(/(?:^|\W)(?:require\(|import\()\s*["']([^"']+)["']/g))
      offenders.push(`${file}: dynamic ${m[1]}`);
  }
  assert.deepEqual(offenders, []);
  const pkg = JSON.parse(fs.readFileSync(path.join(SRC, "../package.json"), "utf8")) as { dependencies?: object };
  assert.equal(Object.keys(pkg.dependencies ?? {}).length, 0);
});
