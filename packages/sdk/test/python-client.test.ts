import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { Client } from "llmos";
import {
  FakeRegistry,
  loadDaemonModule,
  REPO_ROOT,
  startTestDaemon,
  STORIES_GGUF,
  type TestDaemon,
} from "@llmos/test-support";

const mod = await loadDaemonModule();

/** Runs a command without blocking the event loop (the daemon under test lives in this process). */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
  });
}

describe("Python client against the real daemon", { skip: typeof mod === "string" ? mod : false }, () => {
  let daemon: TestDaemon;
  let registry: FakeRegistry;

  before(async () => {
    if (typeof mod === "string") return;
    registry = await FakeRegistry.start();
    daemon = await startTestDaemon(mod, {
      config: { ociAuth: { [registry.host]: { username: "pusher", password: "secret-password" } } },
    });
    await new Client({ host: daemon.url, apiKey: daemon.adminToken }).importModel(STORIES_GGUF, "stories");
  });
  after(async () => {
    await daemon?.close();
    await registry?.close();
  });

  test("python3 -m unittest discover -s clients/python/tests passes with every daemon test run", async () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      LLMOS_TEST_HOST: daemon.url,
      LLMOS_TEST_REGISTRY: registry.host,
      PYTHONDONTWRITEBYTECODE: "1",
    };
    delete env["LLMOS_HOST"];
    if (daemon.adminToken) env["LLMOS_API_KEY"] = daemon.adminToken;
    else delete env["LLMOS_API_KEY"];
    const { code, output } = await run(
      "python3",
      ["-m", "unittest", "discover", "-v", "-s", "clients/python/tests"],
      env,
    );
    assert.equal(code, 0, output);
    const ran = /Ran (\d+) tests?/.exec(output);
    assert.ok(ran, output);
    assert.ok(Number(ran[1]) > 0, output);
    assert.doesNotMatch(output, /skipped/i, "daemon tests must not be skipped when LLMOS_TEST_HOST is set");
    assert.match(output, /test_seed_example/);
  });
});
