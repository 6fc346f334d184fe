/**
 * `llmos build-cpu-backend` end to end: compiles the CPU backend from node-llama-cpp's llama.cpp source (real
 * cmake and compiler, about a minute on 2 cores), then a daemon on that home runs its models on it and says so,
 * and answers as the shipped backend does. Needs git, cmake and a C++ compiler; CI installs them (.ci/run), a
 * machine without them skips this file (CI never does).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Client } from "llmos";
import { loadDaemonModule, STORIES_GGUF } from "@llmos/test-support";
import { cliEnv, runCli } from "./helpers/cli.js";

const mod = await loadDaemonModule();

function missingTools(): string | false {
  for (const tool of ["git", "cmake", "c++"]) {
    try {
      execFileSync(tool, ["--version"], { stdio: "ignore" });
    } catch {
      return `${tool} is not installed`;
    }
  }
  return false;
}
const missing = missingTools();
if (missing && process.env.CI) throw new Error(`CI must install the build tools: ${missing}`);
const skip =
  typeof mod === "string" ? mod : missing || (!fs.existsSync(STORIES_GGUF) ? `missing ${STORIES_GGUF}` : false);

interface BuildJson {
  dir: string;
  seconds: number;
  manifest: { release: string; variant: string; library: string; ggmlBaseSha256: string; compiler: string };
  check: { source: string; library: string; devices: string[] };
}

describe("llmos build-cpu-backend", { skip }, () => {
  let home: string;
  let built: BuildJson;

  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), "llmos-cpu-build-"));
  });
  after(() => fs.rmSync(home, { recursive: true, force: true }));

  test("compiles the backend into <LLMOS_HOME>/engine/ggml-cpu and checks it loads", { timeout: 600_000 }, async () => {
    const r = await runCli(["build-cpu-backend", "--json"], cliEnv({ LLMOS_HOME: home }));
    assert.equal(r.code, 0, r.stderr);
    built = JSON.parse(r.stdout) as BuildJson;
    const dir = path.join(home, "engine", "ggml-cpu");
    assert.equal(built.dir, dir);
    assert.match(built.manifest.release, /^v\d+\.\d+\.\d+$/);
    assert.match(built.manifest.variant, /^\w+$/);
    assert.equal(built.manifest.library, `libggml-cpu-${built.manifest.variant}.so`);
    assert.equal(built.check.source, "built-here");
    assert.equal(built.check.library, path.join(dir, built.manifest.library));
    assert.deepEqual(built.check.devices, ["CPU"]);
    // Only the library and its manifest are installed; the source and build tree are gone.
    assert.deepEqual(fs.readdirSync(dir).sort(), [built.manifest.library, "llmos-cpu-backend.json"].sort());
    assert.deepEqual(fs.readdirSync(home).sort(), ["engine"]);
  });

  test(
    "a daemon on that home runs models on it, shows it in ps, and answers as on the shipped backend",
    { timeout: 120_000 },
    async () => {
      assert.ok(built, "the build test must pass first");
      if (typeof mod === "string") return;
      const greedy = async (config: Record<string, unknown>) => {
        const daemon = await mod.startDaemon({
          port: 0,
          threads: 1,
          host: "127.0.0.1",
          logLevel: "error",
          contextSize: 256,
          parallel: 1,
          importDirs: [path.dirname(STORIES_GGUF)],
          ...config,
        });
        try {
          // The admin token: /api/system is an admin route, even from this machine.
          const token = fs.readFileSync(path.join(String(config["home"]), "admin.token"), "utf8").trim();
          const client = new Client({ host: daemon.url, apiKey: token });
          await client.importModel(STORIES_GGUF, "stories");
          const model = await client.loadModel("stories");
          const text = await model.generateText("Once upon a time", { maxTokens: 24, temperature: 0 });
          const ps = await client.ps();
          const system = (await client.system()) as { cpuBackend?: { builtHere: { variant: string } | null } };
          const psTable = await runCli(["ps"], cliEnv({ LLMOS_HOST: daemon.url, LLMOS_HOME: String(config["home"]) }));
          return {
            text,
            cpuBackend: ps.models[0]?.cpuBackend,
            psTable: psTable.stdout,
            builtHere: system.cpuBackend?.builtHere ?? null,
          };
        } finally {
          await daemon.close();
        }
      };
      const here = await greedy({ home });
      assert.deepEqual(here.cpuBackend, { source: "built-here", variant: built.manifest.variant });
      assert.match(here.psTable, /CPU \(built here\)/);
      assert.equal(here.builtHere?.variant, built.manifest.variant);

      const shippedHome = fs.mkdtempSync(path.join(os.tmpdir(), "llmos-cpu-shipped-"));
      try {
        const shipped = await greedy({ home: shippedHome, cpuBackend: "shipped" });
        assert.equal(shipped.cpuBackend?.source, "shipped");
        assert.equal(shipped.builtHere, null);
        assert.doesNotMatch(shipped.psTable, /built here/);
        assert.match(here.text, /^, there was a little girl named Lily/);
        assert.equal(here.text, shipped.text);
      } finally {
        fs.rmSync(shippedHome, { recursive: true, force: true });
      }
    },
  );

  test("a bad --jobs is refused before anything is built", async () => {
    const r = await runCli(
      ["build-cpu-backend", "--jobs", "0", "--dir", path.join(home, "other")],
      cliEnv({ LLMOS_HOME: home }),
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, /invalid --jobs "0"/);
    assert.equal(fs.existsSync(path.join(home, "other")), false);
  });
});
