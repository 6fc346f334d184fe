#!/usr/bin/env node
// Runs every test file (TypeScript, from source via tsx) with node's test runner.
// Usage: node scripts/test.mjs [filter-substring ...]
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const roots = [
  "packages/protocol/test",
  "packages/gguf/test",
  "packages/sdk/test",
  "packages/server/test",
  "packages/cli/test",
];
const files = [];
function walk(dir) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
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
const env = {
  ...process.env,
  LLMOS_THREADS: process.env.LLMOS_THREADS ?? "1",
  LLMOS_LOG_LEVEL: process.env.LLMOS_LOG_LEVEL ?? "warn",
  // Daemons started from the environment in tests never compile the CPU backend in the background.
  LLMOS_CPU_BACKEND_BUILD: "off",
};
const run = (files, extraEnv = {}) =>
  spawnSync(
    process.execPath,
    [
      "--conditions=llmos-source",
      "--import",
      "tsx",
      "--test",
      "--test-concurrency=1",
      "--test-reporter=spec",
      ...files.sort(),
    ],
    { stdio: "inherit", env: { ...env, ...extraEnv } },
  ).status ?? 1;

let status = run(selected);
// The whole suite runs on the default engine (llama-ffi); the other engine behind the same interface must pass
// the same end-to-end API tests, so those run once more on llama-node.
if (filters.length === 0 && !process.env.LLMOS_ENGINE) {
  const again = files.filter((f) =>
    /e2e\/(openai-client|resilience|ollama-client|lora|structured-tools|ai-sdk|prompt-cache-api)\.test\.ts$/.test(f),
  );
  console.log(`\n== the same end-to-end tests on the llama-node engine (${again.length} files)`);
  status = run(again, { LLMOS_ENGINE: "llama-node" }) || status;
}
// Runners are sandboxed where the machine allows (LLMOS_SANDBOX=auto, which falls back quietly); CI's machines do,
// so the main API tests run once more with LLMOS_SANDBOX=required: a runner that cannot be sandboxed fails them.
if (filters.length === 0 && !process.env.LLMOS_SANDBOX && process.platform === "linux") {
  const again = files.filter((f) => /e2e\/(openai-client|ollama-client|resilience|lora)\.test\.ts$/.test(f));
  console.log(`\n== the same end-to-end tests with LLMOS_SANDBOX=required (${again.length} files)`);
  status = run(again, { LLMOS_SANDBOX: "required" }) || status;
}
process.exit(status);
