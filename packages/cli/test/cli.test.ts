import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { Client } from "llmos";
import type { AddressInfo } from "node:net";
import {
  FakeRegistry,
  loadDaemonModule,
  REPO_ROOT,
  serveFile,
  startTestDaemon,
  STORIES_GGUF,
} from "@llmos/test-support";
import { cliEnv, runCli } from "./helpers/cli.js";

const mod = await loadDaemonModule();
const GREEDY_START = ", there was a little girl named Lily";

describe("llmos CLI without a daemon", () => {
  test("--help lists the commands", async () => {
    const r = await runCli(["--help"], cliEnv({}));
    assert.equal(r.code, 0, r.stderr);
    for (const cmd of [
      "serve",
      "import",
      "list|ls",
      "show",
      "run",
      "ps",
      "keys",
      "pull",
      "push",
      "verify",
      "du",
      "build-cpu-backend",
    ]) {
      assert.ok(r.stdout.includes(cmd), `${cmd} missing from help`);
    }
  });

  test("an unreachable daemon gives one error line with the code and exit 1", async () => {
    const dead = http.createServer();
    await new Promise<void>((r) => dead.listen(0, "127.0.0.1", r));
    const port = (dead.address() as AddressInfo).port;
    await new Promise<void>((r) => dead.close(() => r()));
    const r = await runCli(["show", "x"], cliEnv({ LLMOS_HOST: `127.0.0.1:${port}`, LLMOS_API_KEY: "k" }));
    assert.equal(r.code, 1);
    assert.match(r.stderr.trim(), /^Error: .*\[connection_error\]$/);
    assert.equal(r.stderr.trim().split("\n").length, 1);
  });
});

describe("llmos ps and the background CPU-backend build", () => {
  test("a line under the table says what the build is doing", async () => {
    const builds = [
      { state: "building", phase: "compile", percent: 42, message: "ops.cpp", startedAt: new Date().toISOString() },
      { state: "failed", message: "the background build of the CPU backend failed (cmake exited with 2)" },
    ];
    let next = 0;
    const server = http.createServer((req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ models: [], queue: { total: 0, capacity: 512 }, cpuBackendBuild: builds[next++] }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const building = await runCli(["ps"], cliEnv({ LLMOS_HOST: host, LLMOS_API_KEY: "k" }));
      assert.equal(building.code, 0, building.stderr);
      assert.match(building.stdout, /CPU backend: building in the background \(compile 42%\)/);
      const failed = await runCli(["ps"], cliEnv({ LLMOS_HOST: host, LLMOS_API_KEY: "k" }));
      assert.match(
        failed.stdout,
        /CPU backend: the background build of the CPU backend failed \(cmake exited with 2\)/,
      );
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe("llmos serve", { skip: typeof mod === "string" ? mod : false }, () => {
  test("serves on the given port until SIGTERM, then exits 0", async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "llmos-cli-serve-"));
    const child = spawn(
      process.execPath,
      [
        "--conditions=llmos-source",
        "--import",
        "tsx",
        "packages/cli/src/main.ts",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
      ],
      {
        cwd: REPO_ROOT,
        env: cliEnv({ LLMOS_HOME: home, LLMOS_LOG_LEVEL: "error" }),
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    try {
      let stderr = "";
      const url = await new Promise<string>((resolve, reject) => {
        child.stderr.on("data", (d: Buffer) => {
          stderr += d.toString();
          const m = /llmos listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
          if (m) resolve(m[1]!);
        });
        child.on("close", (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
      });
      assert.equal(await new Client({ host: url }).health(), true);
      const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
      child.kill("SIGTERM");
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

describe("llmos CLI against the real daemon", { skip: typeof mod === "string" ? mod : false }, () => {
  let daemon: Awaited<ReturnType<typeof startTestDaemon>>;
  let env: NodeJS.ProcessEnv;
  let registry: FakeRegistry;

  before(async () => {
    if (typeof mod === "string") return;
    registry = await FakeRegistry.start();
    daemon = await startTestDaemon(mod, {
      config: { ociAuth: { [registry.host]: { username: "pusher", password: "secret-password" } } },
    });
    // No API key: the CLI authenticates with <LLMOS_HOME>/admin.token over loopback.
    env = cliEnv({ LLMOS_HOST: daemon.url, LLMOS_HOME: daemon.home });
  });
  after(async () => {
    await daemon?.close();
    await registry?.close();
  });

  test("import, then list shows a table and --json parses", async () => {
    const imp = await runCli(["import", STORIES_GGUF, "stories"], env);
    assert.equal(imp.code, 0, imp.stderr);
    assert.match(imp.stdout, /imported stories:latest/);

    const list = await runCli(["list"], env);
    assert.equal(list.code, 0, list.stderr);
    const [header, ...rows] = list.stdout.trim().split("\n");
    assert.match(header ?? "", /^NAME\s+ID\s+SIZE\s+PARAMS\s+QUANT\s+MODIFIED$/);
    assert.ok(
      rows.some((r) => r.startsWith("stories:latest")),
      list.stdout,
    );

    const json = await runCli(["ls", "--json"], env);
    assert.equal(json.code, 0, json.stderr);
    const models = JSON.parse(json.stdout) as Array<{ name: string; size: number }>;
    assert.ok(models.some((m) => m.name === "stories:latest" && m.size > 0));
  });

  test("show prints details; --json and --modelfile work", async () => {
    const show = await runCli(["show", "stories"], env);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /architecture\s+llama/);
    const json = await runCli(["show", "stories", "--json"], env);
    const info = JSON.parse(json.stdout) as { name: string; details: { embeddingLength: number } };
    assert.equal(info.name, "stories:latest");
    assert.ok(info.details.embeddingLength > 0);
    const mf = await runCli(["show", "stories", "--modelfile"], env);
    assert.equal(mf.code, 0, mf.stderr);
    assert.match(mf.stdout, /FROM/);
  });

  test("run with a prompt streams the greedy continuation", async () => {
    const r = await runCli(["run", "stories", "Once upon a time", "--temperature", "0", "--max-tokens", "24"], env);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith(GREEDY_START), JSON.stringify(r.stdout));
  });

  test("the REPL answers each line and exits on /bye", async () => {
    const input = "Once upon a time\nOnce upon a time\n/bye\nnever sent\n";
    const r = await runCli(["run", "stories", "-i", "--raw", "--temperature", "0", "-n", "8"], env, input);
    assert.equal(r.code, 0, r.stderr);
    const answers = r.stdout.split(">>> ").filter((a) => a.trim() !== "");
    assert.equal(answers.length, 2, JSON.stringify(r.stdout));
    for (const a of answers) assert.ok(GREEDY_START.startsWith(a.trim()) && a.trim().length > 5, JSON.stringify(a));
  });

  test("load, ps (table and --json), unload", async () => {
    const load = await runCli(["load", "stories", "--keep-alive", "10m", "--min-threads", "1"], env);
    assert.equal(load.code, 0, load.stderr);
    const ps = await runCli(["ps"], env);
    assert.equal(ps.code, 0, ps.stderr);
    assert.match(ps.stdout, /^NAME\s+ID\s+STATE\s+MEMORY\s+PROCESSOR\s+THREADS\s+SLOTS\s+CACHE\s+LOADED FOR\s+UNTIL\n/);
    assert.match(ps.stdout, /stories:latest .* idle /, "an idle model has no threads");
    assert.ok(
      ps.stdout.split("\n").every((l) => l.length <= 120),
      `fits a terminal:\n${ps.stdout}`,
    );
    const wide = await runCli(["ps", "--wide"], env);
    assert.match(
      wide.stdout,
      /^NAME\s+ID\s+STATE\s+MEMORY\s+PEAK \/ LIMIT\s+PROCESSOR\s+THREADS\s+CONTENDED\s+SANDBOX/,
    );
    assert.match(wide.stdout, /\sSLOTS\s+CACHE\s+CONTEXT\s+PID\s+LOADED FOR\s+UNTIL\n/);
    assert.match(wide.stdout, /stories:latest.*\s(yes|partial|limits only|no)\s/);
    assert.match(ps.stdout, /\brequest\b/, "loaded by a load call (a request, not a pin or a prewarm)");
    assert.match(ps.stdout, /keep-alive policy: \w+/);
    const json = await runCli(["ps", "--json"], env);
    const parsed = JSON.parse(json.stdout) as {
      models: Array<{ name: string; cpu: { threads: number; minThreads: number } }>;
      cpu: { cpus: number[] };
    };
    const stories = parsed.models.find((m) => m.name === "stories:latest");
    assert.deepEqual(stories?.cpu && [stories.cpu.threads, stories.cpu.minThreads], [0, 1]);
    assert.ok(parsed.cpu.cpus.length >= 1);
    const unload = await runCli(["unload", "stories"], env);
    assert.equal(unload.code, 0, unload.stderr);
  });

  test("pull shows progress and reports the model; --json streams NDJSON events", async () => {
    const source = await serveFile(STORIES_GGUF);
    try {
      const r = await runCli(["pull", source.url, "--name", "pulled"], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /pulled pulled:latest/);
      assert.ok(r.stderr.trim().split("\n").length >= 2, r.stderr);
      const j = await runCli(["pull", source.url, "--name", "pulled2", "--json"], env);
      assert.equal(j.code, 0, j.stderr);
      const events = j.stdout
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { status: string; model?: { name: string } });
      assert.equal(events.at(-1)?.status, "success");
      assert.equal(events.at(-1)?.model?.name, "pulled2:latest");
    } finally {
      await source.close();
    }
  });

  test("push to a registry, pull it back, and show where it came from", async () => {
    const target = `oci://${registry.host}/team/cli:v1`;
    const push = await runCli(["push", "stories", target, "--insecure"], env);
    assert.equal(push.code, 0, push.stderr);
    const digest = registry.manifest("team/cli", "v1")?.digest;
    assert.ok(digest);
    assert.match(push.stdout, new RegExp(`pushed stories to ${registry.host}/team/cli:v1 \\(${digest}\\)`));
    const pull = await runCli(["pull", target, "--insecure", "--name", "from-registry"], env);
    assert.equal(pull.code, 0, pull.stderr);
    assert.match(pull.stdout, /pulled from-registry:latest/);
    const show = await runCli(["show", "from-registry"], env);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /pulled from/);
    assert.match(show.stdout, new RegExp(`registry\\s+${registry.host}`));
    assert.match(show.stdout, /repository\s+team\/cli/);
    assert.match(show.stdout, /tag\s+v1/);
    assert.match(show.stdout, new RegExp(`manifest\\s+${digest}`));
    const refused = await runCli(["pull", "oci://registry.example.invalid/a/b:c", "--insecure"], env);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /plain http.*\[invalid_reference\]/);
  });

  test("cp and rm", async () => {
    const cp = await runCli(["cp", "stories", "copy:v1"], env);
    assert.equal(cp.code, 0, cp.stderr);
    const rm = await runCli(["rm", "copy:v1"], env);
    assert.equal(rm.code, 0, rm.stderr);
    const gone = await runCli(["show", "copy:v1"], env);
    assert.equal(gone.code, 1);
  });

  test("keys create prints the secret once; the key works; list and revoke", async () => {
    // A second active key keeps auth on after the revoke; from here on the CLI needs the local admin token.
    const keeper = await runCli(["keys", "create", "--name", "keeper", "--scopes", "inference"], env);
    assert.equal(keeper.code, 0, keeper.stderr);
    assert.match(keeper.stdout, /^secret: llmos_/m);
    const created = await runCli(
      ["keys", "create", "--name", "cli-test", "--scopes", "inference", "--rpm", "100", "--json"],
      env,
    );
    assert.equal(created.code, 0, created.stderr);
    const { key, secret } = JSON.parse(created.stdout) as { key: { id: string }; secret: string };
    const keyed = cliEnv({ LLMOS_HOST: daemon.url, LLMOS_API_KEY: secret });
    const run = await runCli(["run", "stories", "Once", "--raw", "-n", "2"], keyed);
    assert.equal(run.code, 0, run.stderr);
    const list = await runCli(["keys", "list"], env);
    assert.match(list.stdout, new RegExp(key.id));
    const revoke = await runCli(["keys", "revoke", key.id], env);
    assert.equal(revoke.code, 0, revoke.stderr);
    const refused = await runCli(["run", "stories", "Once", "--raw", "-n", "2"], keyed);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /\[unauthorized\]/);
  });

  test("an unknown model exits 1 with one line naming the code", async () => {
    const r = await runCli(["show", "no-such-model"], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr.trim(), /^Error: .*\[model_not_found\]$/);
    assert.equal(r.stdout, "");
  });
});
