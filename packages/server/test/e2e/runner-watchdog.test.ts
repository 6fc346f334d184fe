import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";
import { liveRunnerProcesses, waitFor } from "../support/processes.js";

// Test-only hook of the runner (runner/test-stall.ts): a prompt or embedding input holding this text makes the
// runner stall like a deadlocked llama.cpp (it forks a helper, then its main thread blocks for good).
const STALL = "STALL-NOW-5e1d";
process.env.LLMOS_TEST_RUNNER_STALL = STALL;

const linux = process.platform === "linux" ? false : "reads /proc";

async function metric(d: TestDaemon, name: string): Promise<number> {
  const text = (await api(d, "GET", "/metrics")).text;
  return Number(new RegExp(`^${name} (\\d+)`, "m").exec(text)?.[1] ?? NaN);
}

async function runnerPid(d: TestDaemon, model: string): Promise<number> {
  const m = (await api(d, "GET", "/api/ps")).json.models.find((x: any) => x.name === model);
  assert.ok(m?.runnerPid, `${model} is loaded`);
  return m.runnerPid;
}

/** Resolves once the runner has stalled: its helper child is alive (in its process group, or its sandbox). */
const stalled = (pid: number) =>
  waitFor(() => (liveRunnerProcesses(pid).some((p) => p.endsWith(":sleep")) ? true : undefined), 20_000, "the stall");

/** Resolves once nothing of the runner's process group (or sandbox) is alive. */
const groupGone = (pid: number) =>
  waitFor(() => (liveRunnerProcesses(pid).length === 0 ? true : undefined), 20_000, `process group ${pid} to end`);

describe("a runner that stops making progress", { skip: linux }, () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon({ runnerStallTimeoutMs: 3000 });
    const created = await api(d, "POST", "/api/create", { model: "victim", from: "stories", stream: false });
    assert.equal(created.status, 200, created.text);
  });
  after(async () => d?.stop());

  test("is killed with what it forked; its request fails with runner_stalled; unload waits no longer; it loads again", async () => {
    const warm = await api(d, "POST", "/v1/completions", { model: "victim", prompt: "Once", max_tokens: 2 });
    assert.equal(warm.status, 200, warm.text);
    const pid = await runnerPid(d, "victim:latest");
    const stream = fetch(`${d.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "victim", prompt: `Once ${STALL}`, max_tokens: 8, stream: true }),
    }).then((r) => r.text());
    await stalled(pid);
    // What a user saw before: ready and busy, forever.
    const busy = (await api(d, "GET", "/api/ps")).json.models.find((m: any) => m.name === "victim:latest");
    assert.equal(busy.slotsBusy, 1);
    // Unload and keep_alive 0 wait for the request; the watchdog ends it, so they finish.
    const unload = api(d, "POST", "/api/models/victim/unload");
    const keepAlive0 = api(d, "POST", "/api/generate", { model: "victim", keep_alive: 0 });
    const events = await stream;
    assert.match(events, /"code":"runner_stalled"/, events);
    assert.equal((await unload).status, 200);
    assert.equal((await keepAlive0).status, 200);
    await groupGone(pid);
    assert.equal(await metric(d, "llmos_runner_stalls_total"), 1);
    assert.equal(await metric(d, "llmos_runner_crashes_total"), 0);
    // Another model was never touched, and the stalled one loads again.
    assert.equal(
      (await api(d, "POST", "/v1/completions", { model: "stories", prompt: "Once", max_tokens: 2 })).status,
      200,
    );
    const again = await api(d, "POST", "/v1/completions", { model: "victim", prompt: "Once", max_tokens: 2 });
    assert.equal(again.status, 200, again.text);
    assert.notEqual(await runnerPid(d, "victim:latest"), pid);
  });

  test("non-streamed requests and embeddings get 502 runner_stalled", async () => {
    const chat = await api(d, "POST", "/v1/chat/completions", {
      model: "victim",
      messages: [{ role: "user", content: `hi ${STALL}` }],
      max_tokens: 4,
    });
    assert.equal(chat.status, 502, chat.text);
    assert.equal(chat.json.error.code, "runner_stalled");
    const embed = await api(d, "POST", "/api/embed", { model: "victim", input: ["fine", `and ${STALL}`] });
    assert.equal(embed.status, 502, embed.text);
    assert.match(embed.text, /made no progress/);
  });

  test("deleting a model whose runner is stuck finishes", async () => {
    await api(d, "POST", "/v1/completions", { model: "victim", prompt: "Once", max_tokens: 2 });
    const pid = await runnerPid(d, "victim:latest");
    const stuck = api(d, "POST", "/api/generate", { model: "victim", prompt: STALL, stream: false });
    await stalled(pid);
    const deleted = await api(d, "DELETE", "/api/models/victim");
    assert.equal(deleted.status, 200, deleted.text);
    assert.equal((await stuck).status, 502);
    await groupGone(pid);
    assert.equal((await api(d, "GET", "/api/models/victim")).status, 404);
  });
});

describe("no runner outlives its daemon", { skip: linux }, () => {
  test("closing a daemon whose runner is stuck (watchdog off) kills the runner and what it forked", async () => {
    const d = await startTestDaemon({ runnerStallTimeoutMs: 0 });
    let pid = 0;
    try {
      await api(d, "POST", "/v1/completions", { model: "stories", prompt: "Once", max_tokens: 2 });
      pid = await runnerPid(d, "stories:latest");
      void api(d, "POST", "/v1/completions", { model: "stories", prompt: STALL, max_tokens: 2 }).catch(() => undefined);
      await stalled(pid);
    } finally {
      await d.stop();
    }
    assert.deepEqual(liveRunnerProcesses(pid), []);
  });

  test("a runner whose daemon was killed ends itself and its process group", async () => {
    const script = path.join(path.dirname(fileURLToPath(import.meta.url)), "../support/orphan-runner.ts");
    const daemon = spawn(process.execPath, ["--conditions=llmos-source", "--import", "tsx", script, STALL], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, LLMOS_TEST_RUNNER_STALL: STALL },
    });
    let out = "";
    daemon.stdout.on("data", (chunk) => (out += String(chunk)));
    const pid = await waitFor(() => /"runner":(\d+)/.exec(out)?.[1], 60_000, "the runner to start").then(Number);
    await stalled(pid);
    daemon.kill("SIGKILL");
    await groupGone(pid);
  });
});
