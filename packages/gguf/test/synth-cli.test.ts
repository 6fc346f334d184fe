import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureSynthModels, readGguf, type LlamaShape } from "../src/index.js";
import { findRepoRoot, parseSynthArgs } from "../src/cli/synth.js";
import { REPO_ROOT } from "./models.js";

const shapes: Record<string, LlamaShape> = {
  "t-a": { dim: 32, layers: 1, heads: 2, ffn: 64, vocab: 300, type: "F16" },
  "t-b": { dim: 32, layers: 2, heads: 2, ffn: 64, vocab: 300, type: "Q8_0" },
};

test("ensureSynthModels creates missing models, keeps valid ones, rewrites broken ones", async () => {
  const dir = mkdtempSync(join(tmpdir(), "llmos-gguf-cache-"));
  try {
    const out = join(dir, "nested", "models");
    const lines: string[] = [];
    const first = await ensureSynthModels({ outDir: out, shapes, log: (l) => lines.push(l) });
    assert.deepEqual(
      first.map((r) => [r.name, r.created]),
      [
        ["t-a", true],
        ["t-b", true],
      ],
    );
    assert.ok(lines.some((l) => l.includes("100%")));
    for (const r of first) assert.equal(statSync(r.path).size, r.bytes);

    const second = await ensureSynthModels({ outDir: out, shapes, only: ["t-b"] });
    assert.deepEqual(
      second.map((r) => [r.name, r.created]),
      [["t-b", false]],
    );

    truncateSync(join(out, "t-a.gguf"), 100);
    const third = await ensureSynthModels({ outDir: out, shapes });
    assert.deepEqual(
      third.map((r) => [r.name, r.created]),
      [
        ["t-a", true],
        ["t-b", false],
      ],
    );
    assert.equal((await readGguf(join(out, "t-a.gguf"))).tensors.length, 3 + 9);

    // A file with another shape under the name is replaced.
    const swapped = await ensureSynthModels({ outDir: out, shapes: { "t-a": shapes["t-b"]! } });
    assert.equal(swapped[0]!.created, true);

    await assert.rejects(ensureSynthModels({ outDir: out, shapes, only: ["nope"] }), RangeError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("command line parsing and the repository root", () => {
  assert.deepEqual(parseSynthArgs([]), { help: false });
  assert.deepEqual(parseSynthArgs(["--out", "x", "--only", "a,b", "--only", "c"]), {
    help: false,
    out: "x",
    only: ["a", "b", "c"],
  });
  assert.throws(() => parseSynthArgs(["--out"]), /needs a value/);
  assert.throws(() => parseSynthArgs(["--bogus"]), /unknown argument/);
  assert.equal(findRepoRoot(), REPO_ROOT);
  assert.ok(existsSync(join(findRepoRoot(), "packages", "gguf")));
});

test("the CLI runs as a program", () => {
  const run = (...args: string[]) =>
    spawnSync(process.execPath, ["--import", "tsx", join(REPO_ROOT, "packages/gguf/src/cli/synth.ts"), ...args], {
      encoding: "utf8",
    });
  const help = run("--help");
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /usage: synth/);
  const bad = run("--only", "no-such-model", "--out", join(tmpdir(), "llmos-gguf-never"));
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /unknown synthetic model "no-such-model"/);
  assert.equal(run("--bogus").status, 2);
});
