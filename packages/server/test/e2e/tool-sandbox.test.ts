/**
 * Model-tool workers (quantize, imatrix, eval) against a real kernel, as an attacker would try them: a worker that
 * a hostile model file took over (test/support/hostile-tool-worker.ts: the real worker plus attacks a job's text
 * triggers) reaches no network, no daemon file and no model but its inputs, cannot signal the daemon, writes only
 * its own output folder and no more than its job allows, and cannot hand the daemon another file as its output.
 * The real jobs still work inside the sandbox (a quantize here; test/e2e/quantize.test.ts and quality-jobs.test.ts
 * run them all the same way).
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";
import type { AttackReport } from "../support/sandbox-attacks.js";
import { runJob } from "../support/quantize.js";
import { loggedReport, sandboxTestSkip } from "../support/sandbox-tests.js";
import { TINY_RANDOM } from "../support/paths.js";

const HOSTILE_WORKER = fileURLToPath(new URL("../support/hostile-tool-worker.ts", import.meta.url));

describe("model-tool worker sandbox (real workers, real kernel)", { skip: sandboxTestSkip, timeout: 300_000 }, () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon({ contextSize: 256, parallel: 1 }, { options: { toolWorkerEntry: HOSTILE_WORKER } });
    await d.store.importFile(TINY_RANDOM, "other");
  });
  after(async () => d?.stop());

  test("a hostile worker reads its input and nothing else of the daemon, and reaches no network or process", async () => {
    const stories = await d.store.get("stories");
    const other = await d.store.get("other");
    const port = Number(new URL(d.url).port);
    rmSync("/tmp/llmos-tool-pwned", { force: true });
    const plan = {
      read: [d.store.blobPath(stories.digest), d.store.blobPath(other.digest), path.join(d.home, "llmos.db")],
      write: [path.join(d.home, "pwned"), d.store.blobPath(stories.digest), "/tmp/llmos-tool-pwned"],
      connect: [{ host: "127.0.0.1", port }],
      signal: [process.pid],
    };
    const from = d.logs.length;
    const view = await runJob(d, "eval", { model: "stories", text: `#attack ${JSON.stringify(plan)}` });
    assert.equal(view.state, "failed");
    const got = loggedReport<AttackReport>(d, "sandbox-probe", from);
    assert.ok(got, "the worker reported its attack");
    // Its input, bound where the store keeps it; neither the other model's blob nor the database is there.
    assert.deepEqual(
      got.read.map((r) => r.result),
      ["ok", "ENOENT", "ENOENT"],
    );
    // The home folder is an empty read-only tmpfs and the input is bound read-only; /tmp is its own.
    assert.notEqual(got.write[0]!.result, "ok");
    assert.notEqual(got.write[1]!.result, "ok");
    assert.equal(got.write[2]!.result, "ok");
    assert.equal(existsSync(path.join(d.home, "pwned")), false);
    assert.equal(existsSync("/tmp/llmos-tool-pwned"), false, "its /tmp is not the host's");
    assert.equal(got.connect[0]!.result, "ECONNREFUSED", "its loopback is its own");
    assert.equal(got.signal[0]!.result, "ESRCH", "the daemon's process is not in its namespace");
    if (process.getuid?.() === 0) assert.equal(got.uid, 65534, "a root daemon's worker runs as the sandbox user");
  });

  test("a worker that links its output to another file is refused, and nothing is kept", async () => {
    const other = await d.store.get("other");
    const view = await runJob(d, "imatrix", {
      model: "stories",
      text: `#link ${d.store.blobPath(other.digest)}`,
      textName: "attack.txt",
      contextSize: 128,
    });
    assert.equal(view.state, "failed");
    assert.match(view.error.message, /not a plain file of its own/);
    assert.deepEqual(readdirSync(d.store.dirs.tmp), [], "no worker folder or output left behind");
  });

  test("a worker that writes more than its job allows is stopped, and its files are gone", async () => {
    // Into its output file, and into a folder it made inside its output folder.
    for (const text of ["#fill 64", "#fill 64 deep"]) {
      const started = Date.now();
      const view = await runJob(d, "imatrix", { model: "stories", text, textName: "attack.txt", contextSize: 128 });
      assert.equal(view.state, "failed", text);
      assert.match(view.error.message, /wrote more than the \d+ bytes its job allows/);
      assert.ok(Date.now() - started < 30_000, "stopped by the daemon, not by a timeout");
      assert.deepEqual(readdirSync(d.store.dirs.tmp), []);
    }
  });

  test("a worker that announces a nonsense output size (NaN) is stopped before it writes", async () => {
    const res = await api(d, "POST", "/api/models/quantize", {
      model: "stories",
      name: "stories-nan",
      type: "Q8_0",
      pure: true,
      stream: false,
    });
    // Refused (500: the worker broke the protocol), never adopted, nothing written left behind.
    assert.equal(res.status, 500, res.text);
    assert.equal((await api(d, "GET", "/api/models/stories-nan")).status, 404);
    assert.deepEqual(readdirSync(d.store.dirs.tmp), []);
  });

  test("a real quantize runs inside the sandbox and gives a working model", async () => {
    const res = await api(d, "POST", "/api/models/quantize", {
      model: "stories",
      name: "stories-q8",
      type: "Q8_0",
      stream: false,
    });
    assert.equal(res.status, 200, res.text);
    const r = await api(d, "POST", "/v1/completions", {
      model: "stories-q8",
      prompt: "Once upon a time",
      max_tokens: 8,
      temperature: 0,
    });
    assert.equal(r.status, 200, r.text);
    assert.ok(r.json.choices[0].text.length > 0);
    assert.deepEqual(readdirSync(d.store.dirs.tmp), [], "the worker's folder is gone");
  });
});
