/**
 * Runner sandboxes against a real kernel: a runner that attacks its sandbox (test/support/hostile-runner.ts: the
 * real runner plus attacks a prompt triggers) cannot reach the network, the daemon's files, other models or the
 * daemon's processes, cannot write outside its private /tmp and cannot fork without bound; a runner driven past its
 * memory limit is stopped by the kernel alone, its requests get `runner_oom`, another model's stream is untouched,
 * and the model's next load gets a raised estimate.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { memoryLimitFor, PRESTARTED_DIR } from "../../src/runtime/sandbox/runner-launcher.js";
import { adminHeaders, api, startTestDaemon, type TestDaemon } from "../support/daemon.js";
import type { AttackReport } from "../support/hostile-runner.js";
import { loggedReport, sandboxTestSkip } from "../support/sandbox-tests.js";
import { REPO_ROOT, STORIES, STORIES_GOLDEN, TINY_RANDOM } from "../support/paths.js";
import { slowModel } from "../support/synth.js";

const HOSTILE_RUNNER = fileURLToPath(new URL("../support/hostile-runner.ts", import.meta.url));
async function waitFor<T>(fn: () => T | undefined | Promise<T | undefined>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}

function complete(d: TestDaemon, model: string, prompt: string, maxTokens = 30) {
  return api(d, "POST", "/v1/completions", { model, prompt, max_tokens: maxTokens, temperature: 0 });
}

async function psModel(d: TestDaemon, name: string): Promise<any> {
  return (await api(d, "GET", "/api/ps")).json.models.find((m: any) => m.name === name);
}

/** Streams a completion; `onFirst` runs once the first text arrived; resolves with all text. */
async function streamText(d: TestDaemon, body: Record<string, unknown>, onFirst?: () => Promise<void>) {
  const res = await fetch(`${d.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...body, stream: true }),
  });
  assert.equal(res.status, 200);
  const decoder = new TextDecoder();
  let buf = "";
  let text = "";
  let first = onFirst;
  for await (const bytes of res.body!) {
    buf += decoder.decode(bytes, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) !== -1) {
      const data = buf.slice(0, i).replace(/^data: /, "");
      buf = buf.slice(i + 2);
      if (data === "[DONE]") continue;
      const json = JSON.parse(data);
      assert.equal(json.error, undefined, JSON.stringify(json.error));
      text += json.choices[0].text;
    }
    if (first && text) {
      const run = first;
      first = undefined;
      await run();
    }
  }
  return text;
}

describe("runner sandbox (real runners, real kernel)", { skip: sandboxTestSkip, timeout: 600_000 }, () => {
  let d: TestDaemon;
  let root: boolean;
  before(async () => {
    d = await startTestDaemon({}, { options: { runnerEntry: HOSTILE_RUNNER } });
    await d.store.importFile(TINY_RANDOM, "other");
    await d.store.importFile(STORIES, "hog");
    await d.store.importFile(await slowModel(), "slow");
    root = process.getuid?.() === 0;
  });
  after(async () => d?.stop());

  test("the machine supports sandboxes, and runners get one", async () => {
    const system = (await api(d, "GET", "/api/system", undefined, adminHeaders(d))).json;
    assert.equal(system.sandbox.effective, "sandboxed", JSON.stringify(system.sandbox));
    assert.equal(system.sandbox.namespaces, true);
    assert.ok(system.sandbox.cgroup.controllers.memory);
    const r = await complete(d, "stories", "Once upon a time");
    assert.equal(r.status, 200);
    assert.ok(r.json.choices[0].text.startsWith(STORIES_GOLDEN));
    const m = await psModel(d, "stories:latest");
    assert.equal(m.sandbox.sandboxed, true);
    assert.equal(m.sandbox.reason, null);
    if (root) assert.equal(m.sandbox.uid, 65534);
    assert.ok(m.sandbox.pidsLimit >= 128);
    assert.match(m.sandbox.cpus, /^\d/);
    // The limit is the estimate plus 15% (at least 512 MiB); the runner's measured peak stays under it.
    assert.equal(m.memory.limitBytes, memoryLimitFor(m.memory.estimatedBytes, 0.15));
    assert.ok(m.memory.peakBytes > 0 && m.memory.peakBytes < m.memory.limitBytes, JSON.stringify(m.memory));
  });

  test("a prestarted runner sees the model it was given through its own folder, and no other model", async () => {
    await waitFor(() => (d.scheduler.snapshot().prestart?.state === "ready" ? true : undefined));
    let prestarted: boolean | undefined;
    const off = d.scheduler.subscribe((e) => {
      if (e.type === "model.loaded" && e.model === "other:latest") prestarted = e.prestarted;
    });
    const first = await complete(d, "other", "Hello", 2);
    off();
    assert.equal(first.status, 200, first.text);
    assert.equal(prestarted, true, "the load took the prestarted runner");
    const stories = await d.store.get("stories");
    const other = await d.store.get("other");
    // Its folder holds a hard link to the blob: the same file, not a copy.
    const folders = path.join(d.home, PRESTARTED_DIR);
    const blob = statSync(d.store.blobPath(other.digest)).ino;
    const given = readdirSync(folders)
      .map((n) => path.join(folders, n, "model.gguf"))
      .filter((f) => existsSync(f) && statSync(f).ino === blob);
    assert.equal(given.length, 1, "one runner holds this model through its folder");
    const plan = { read: [given[0]!, d.store.blobPath(other.digest), d.store.blobPath(stories.digest)] };
    const from = d.logs.length;
    const r = await complete(d, "other", `#attack ${JSON.stringify(plan)}`, 2);
    assert.equal(r.status, 200, r.text);
    const got = await waitFor(() => loggedReport<AttackReport>(d, "sandbox-probe", from));
    assert.deepEqual(
      got.read.map((f) => f.result),
      ["ok", "ENOENT", "ENOENT"],
      "its own model through its folder; neither blob in the store",
    );
  });

  test("a hostile runner reaches no network, no daemon file, no other model, no host file, no fork bomb", async () => {
    const connections: net.Socket[] = [];
    const listener = net.createServer((s) => connections.push(s));
    await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
    const port = (listener.address() as net.AddressInfo).port;
    const other = await d.store.get("other");
    const escapes = path.join(REPO_ROOT, ".cache", `sandbox-escape-${process.pid}`);
    mkdirSync(path.dirname(escapes), { recursive: true });
    const plan = {
      connect: [
        { host: "127.0.0.1", port },
        { host: "::1", port },
      ],
      read: [
        path.join(d.home, "admin.token"),
        path.join(d.home, "llmos.db"),
        d.store.blobPath(other.digest),
        path.join(d.home, "models", "manifests"),
      ],
      // The repository and the home folder are read-only inside; /tmp is the runner's own (it may write there).
      write: [escapes, path.join(d.home, "escape"), path.join(os.tmpdir(), `escape-${process.pid}`)],
      signal: [process.pid],
      fork: 1000,
    };
    const from = d.logs.length;
    try {
      const r = await complete(d, "stories", `#attack ${JSON.stringify(plan)}`, 4);
      assert.equal(r.status, 200, r.text);
      const got = await waitFor(() => loggedReport<AttackReport>(d, "sandbox-probe", from));
      for (const c of got.connect) assert.notEqual(c.result, "connected", `${c.target}: ${c.result}`);
      assert.equal(connections.length, 0, "the host's loopback listener was reached");
      // The home folder is an empty tmpfs inside: its files are simply not there.
      for (const f of got.read) assert.equal(f.result, "ENOENT", `${f.path}: ${f.result}`);
      for (const f of got.write.slice(0, 2)) assert.notEqual(f.result, "ok", `${f.path} was written`);
      for (const f of plan.write) assert.equal(existsSync(f), false, `${f} appeared on the host`);
      // Its own PID namespace: the daemon does not exist from inside.
      assert.equal(got.signal[0]!.result, "ESRCH");
      assert.ok(got.fork!.started < 1000, `started ${got.fork!.started} processes`);
      assert.equal(got.fork!.error, "EAGAIN");
      if (root) assert.equal(got.uid, 65534);
    } finally {
      for (const s of connections) s.destroy();
      listener.close();
      for (const f of plan.write) rmSync(f, { force: true }); // what an unsandboxed runner would have left
    }
    // The daemon keeps serving, on this runner and on others.
    const again = await complete(d, "stories", "Once upon a time");
    assert.equal(again.status, 200);
    assert.ok(again.json.choices[0].text.startsWith(STORIES_GOLDEN));
    const tiny = await complete(d, "other", "Hello", 4);
    assert.equal(tiny.status, 200);
  });

  test("a runner that floods the daemon's log gets its budget of lines, and the rest is dropped and said", async () => {
    const from = d.logs.length;
    const r = await complete(d, "stories", "#logflood 5000", 2);
    assert.equal(r.status, 200, r.text);
    const msgs = () => d.logs.slice(from).map((l) => (JSON.parse(l) as { msg?: string }).msg ?? "");
    await waitFor(() => (msgs().some((m) => m.startsWith("log lines over this process's budget")) ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 500)); // what is still in the channel
    const flood = msgs().filter((m) => /^flood \d+$/.test(m)).length;
    assert.ok(flood >= 500 && flood <= 1000, `${flood} flood lines logged`);
    const again = await complete(d, "stories", "Once upon a time");
    assert.ok(again.json.choices[0].text.startsWith(STORIES_GOLDEN), "the runner serves on");
  });

  test("a runner past its memory limit is stopped by the kernel; others stream on; its next load gets more", async () => {
    const slowBody = { model: "slow", prompt: "The quick brown fox", max_tokens: 200, temperature: 0 };
    const reference = await streamText(d, slowBody);
    const warm = await complete(d, "hog", "Once upon a time");
    assert.equal(warm.status, 200);
    const before = await psModel(d, "hog:latest");
    const slowPid = (await psModel(d, "slow:latest")).runnerPid;
    let oom: Awaited<ReturnType<typeof complete>> | undefined;
    const text = await streamText(d, slowBody, async () => {
      oom = await complete(d, "hog", "#allocate", 500);
    });
    assert.equal(text, reference, "the other model's stream changed");
    assert.equal((await psModel(d, "slow:latest")).runnerPid, slowPid);
    assert.equal(oom!.status, 503, oom!.text);
    assert.equal(oom!.json.error.code, "runner_oom");
    assert.match(oom!.json.error.message, /hog:latest/);
    const ps = (await api(d, "GET", "/api/ps")).json;
    const record = ps.oomKills.find((k: any) => k.model === "hog:latest");
    assert.ok(record, JSON.stringify(ps.oomKills));
    assert.equal(record.limitBytes, before.memory.limitBytes);
    assert.ok(record.nextEstimateBytes >= before.memory.limitBytes * 1.5);
    // The next load starts from the raised estimate, with a limit to match, and serves.
    const after = await complete(d, "hog", "Once upon a time");
    assert.equal(after.status, 200, after.text);
    assert.ok(after.json.choices[0].text.startsWith(STORIES_GOLDEN));
    const reloaded = await psModel(d, "hog:latest");
    assert.equal(reloaded.memory.estimatedBytes, record.nextEstimateBytes);
    assert.ok(reloaded.memory.estimate.raisedAfterOom > 0);
    assert.ok(reloaded.memory.limitBytes > before.memory.limitBytes * 1.5);
    // Metrics and the audit log say so.
    const metrics = (await api(d, "GET", "/metrics")).text;
    assert.match(metrics, /llmos_runner_oom_kills_total\{model="hog:latest"\} 1/);
    const audit = await d.security.audit.query({ action: "runner.oom" });
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.target, "hog:latest");
  });
});

// A root daemon whose sandbox user does not exist cannot drop runners to it: a machine that cannot sandbox, as far
// as the daemon can tell (the cgroup limits still work).
const rootOnly =
  process.getuid?.() === 0 ? sandboxTestSkip : "needs a root daemon (the sandbox user only applies to root)";

describe("when runners cannot be sandboxed", { skip: rootOnly, timeout: 300_000 }, () => {
  const user = "llmos-no-such-user";

  test("auto falls back with one warning, and /api/ps and /api/system say why", async () => {
    const d = await startTestDaemon({ sandbox: "auto", sandboxUser: user });
    try {
      const r = await complete(d, "stories", "Once upon a time");
      assert.equal(r.status, 200, r.text);
      assert.ok(r.json.choices[0].text.startsWith(STORIES_GOLDEN));
      const m = await psModel(d, "stories:latest");
      assert.equal(m.sandbox.sandboxed, false);
      assert.match(m.sandbox.reason, /llmos-no-such-user not found/);
      assert.equal(m.sandbox.cgroup !== null, m.memory.limitBytes !== null, "limits where cgroups allow");
      const system = (await api(d, "GET", "/api/system", undefined, adminHeaders(d))).json;
      assert.equal(system.sandbox.namespaces, false);
      assert.notEqual(system.sandbox.effective, "sandboxed");
      const warnings = d.logs.filter((l) => l.includes("runners are not fully sandboxed here"));
      assert.equal(warnings.length, 1, "one warning, not one per runner");
    } finally {
      await d.stop();
    }
  });

  test("required refuses to load: 503 sandbox_unavailable saying why; the daemon serves on", async () => {
    const d = await startTestDaemon({ sandbox: "required", sandboxUser: user });
    try {
      const r = await complete(d, "stories", "Once upon a time");
      assert.equal(r.status, 503, r.text);
      assert.equal(r.json.error.code, "sandbox_unavailable");
      assert.match(r.json.error.message, /stories:latest.*llmos-no-such-user not found/);
      assert.deepEqual((await api(d, "GET", "/api/ps")).json.models, []);
      assert.equal((await api(d, "GET", "/api/tags")).status, 200);
    } finally {
      await d.stop();
    }
  });
});
