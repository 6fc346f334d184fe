#!/usr/bin/env node
// Runs every test file (TypeScript, from source via tsx) with node's test runner.
// Usage: node scripts/test.mjs [filter-substring ...]
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const roots = ["packages/protocol/test", "packages/gguf/test", "packages/sdk/test", "packages/server/test", "packages/cli/test"];
const files = [];
function walk(dir) {
  let entries;
  try { entries = readdirSync(dir); } catch { return; }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p);
    else if (e.endsWith(".test.ts")) files.push(p);
  }
}
roots.forEach(walk);
const filters = process.argv.slice(2);
const selected = filters.length ? files.filter((f) => filters.some((s) => f.includes(s))) : files;
if (selected.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}
const env = { ...process.env, LLMOS_THREADS: process.env.LLMOS_THREADS ?? "1", LLMOS_LOG_LEVEL: process.env.LLMOS_LOG_LEVEL ?? "warn" };
const r = spawnSync(process.execPath, [
  "--conditions=llmos-source", "--import", "tsx",
  "--test", "--test-concurrency=1", "--test-reporter=spec",
  ...selected.sort(),
], { stdio: "inherit", env });
process.exit(r.status ?? 1);
