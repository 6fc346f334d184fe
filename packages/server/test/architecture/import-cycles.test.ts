import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const PACKAGES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir)) {
    const p = path.join(dir, entry);
    if (statSync(p).isDirectory()) sourceFiles(p, out);
    else if (p.endsWith(".ts") && !p.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

/** Relative imports and re-exports of a file, type-only ones included (they couple modules just the same). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+["'](\.{1,2}\/[^"']+)["']/gms))
    out.push(path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, ".ts")));
  return out;
}

/** Every cycle found by a depth-first walk, as `a -> b -> a` paths relative to `root`. */
function cycles(root: string): string[] {
  const files = sourceFiles(root);
  const graph = new Map(files.map((f) => [f, importsOf(f).filter((d) => files.includes(d))]));
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const found: string[] = [];
  const visit = (node: string) => {
    state.set(node, "open");
    stack.push(node);
    for (const dep of graph.get(node) ?? []) {
      if (state.get(dep) === "open")
        found.push([...stack.slice(stack.indexOf(dep)), dep].map((f) => path.relative(root, f)).join(" -> "));
      else if (!state.has(dep)) visit(dep);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const file of files) if (!state.has(file)) visit(file);
  return found;
}

test("no package's source has an import cycle (type-only imports count)", () => {
  const packages = readdirSync(PACKAGES).filter((p) =>
    statSync(path.join(PACKAGES, p, "src"), { throwIfNoEntry: false }),
  );
  assert.ok(packages.includes("server") && packages.includes("sdk"), packages.join(","));
  for (const p of packages) assert.deepEqual(cycles(path.join(PACKAGES, p, "src")), [], `import cycles in ${p}`);
});
