/**
 * `llmos top` under a pseudo-terminal (util-linux `script` gives the CLI a real tty): it draws the live view from
 * the daemon's event stream, redraws as models load, and quits on `q`, restoring the terminal.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { Client } from "llmos";
import { loadDaemonModule, REPO_ROOT, startTestDaemon, STORIES_GGUF, type TestDaemon } from "@llmos/test-support";
import { renderTop } from "../src/top-view.js";
import { cliEnv, runCli } from "./helpers/cli.js";

const mod = await loadDaemonModule();
const SCRIPT = "/usr/bin/script";

describe("llmos top", { skip: typeof mod === "string" ? mod : false, timeout: 180_000 }, () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon(mod as Exclude<typeof mod, string>, { homePrefix: "llmos-top-" });
    await new Client({ host: d.url }).importModel(STORIES_GGUF, "stories");
  });
  after(() => d?.close());

  test("--once prints one screen with the loaded models, slots and figures", async () => {
    await new Client({ host: d.url }).loadModel("stories");
    const r = await runCli(["top", "--once"], cliEnv({ LLMOS_HOST: d.url }));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /tokens\/s \d/);
    assert.match(r.stdout, /MODEL\s+STATE\s+MEMORY\s+SLOTS/);
    assert.match(r.stdout, /stories:latest\s+ready\s+.*0\/2/);
  });

  test(
    "runs live in a terminal, redraws when a model goes, and quits on q",
    { skip: !existsSync(SCRIPT) },
    async () => {
      const command = [
        process.execPath,
        "--conditions=llmos-source",
        "--import",
        "tsx",
        "packages/cli/src/main.ts",
        "top",
      ]
        .map((a) => `'${a}'`)
        .join(" ");
      const child = spawn(SCRIPT, ["-qfec", command, "/dev/null"], {
        cwd: REPO_ROOT,
        env: { ...cliEnv({ LLMOS_HOST: d.url }), TERM: "xterm", COLUMNS: "120", LINES: "40" },
        stdio: ["pipe", "pipe", "pipe"],
      });
      let screen = "";
      child.stdout.on("data", (b: Buffer) => (screen += b.toString()));
      const waitFor = async (what: RegExp, timeoutMs = 60_000) => {
        const end = Date.now() + timeoutMs;
        while (!what.test(screen)) {
          if (Date.now() > end) throw new Error(`no ${what} on the screen:\n${screen.slice(-2000)}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };
      const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
      await waitFor(new RegExp(String.fromCharCode(27) + "\\[\\?1049h")); // the alternate screen
      await waitFor(/stories:latest/);
      const mark = screen.length;
      await new Client({ host: d.url }).unloadModel("stories");
      await waitFor(new RegExp(`[\\s\\S]{${mark}}[\\s\\S]*no model loaded`));
      child.stdin.write("q");
      assert.equal(await exited, 0);
      assert.ok(screen.includes("\x1b[?1049l"), "the terminal is restored");
    },
  );
});

test("renderTop shows the figures, models and requests of a snapshot", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  const text = renderTop(
    {
      time: now,
      version: "1.2.3",
      node: {
        memory: { totalBytes: 16e9, availableBytes: 8e9 },
        cpu: { cores: 8, model: "cpu", loadAverage1m: 1 },
        gpus: [],
        budget: { budgetBytes: 10e9, reservedBytes: 2e9 },
      },
      models: [
        {
          name: "m:latest",
          digest: "",
          runnerPid: 1,
          state: "ready",
          contextSize: 2048,
          slots: 4,
          slotsBusy: 1,
          queued: 2,
          pinned: false,
          expiresAt: new Date(now + 300_000).toISOString(),
          memory: { estimatedBytes: 2e9, rssBytes: null, vramBytes: null },
          gpuLayers: 0,
          engine: "llama-ffi",
          cpuBackend: null,
          cpu: { threads: 2, cpus: null, shared: true, minThreads: 1, demand: 3, appliedAt: null },
          stats: {
            decodeBatches: 0,
            multiSequenceBatches: 0,
            maxSequencesInBatch: 0,
            tokensGenerated: 0,
            promptTokens: 0,
            contendedBatches: 0,
          },
        },
      ],
      queue: { total: 2, capacity: 512 },
      lastUsed: {},
      requests: [
        {
          id: "g1",
          requestId: "r",
          model: "m:latest",
          kind: "chat",
          state: "running",
          keyName: "alice",
          keyId: "k",
          tokens: 17,
          arrivedAt: now - 3000,
          startedAt: now - 2000,
        },
      ],
      point: {
        t: now,
        tokensPerSecond: 42.5,
        promptTokensPerSecond: 0,
        running: 1,
        queued: 2,
        ttftP50: 0.12,
        ttftP95: 0.5,
        requestsPerSecond: 1,
        errorRate: 0,
        cpuBusy: 0.5,
      },
      access: { admin: true, modelsWrite: true, modelsRead: true, inference: true, metrics: true },
    },
    now,
  );
  assert.match(text, /tokens\/s 42\.5\s+running 1\s+queued 2\s+TTFT p50 120 ms p95 500 ms/);
  assert.match(text, /m:latest\s+ready\s+2\.0 GB\s+1\/4\s+2\s+2 \(shared\)\s+2048\s+5 minutes/);
  assert.match(text, /g1\s+m:latest\s+running\s+alice\s+17\s+3 seconds/);
});
