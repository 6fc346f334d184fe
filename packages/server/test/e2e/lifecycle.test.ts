import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { describe, test } from "node:test";
import { startDaemon } from "../../src/daemon.js";
import { STORIES, TINY_RANDOM } from "../support/paths.js";
import { adminHeaders, api, startTestDaemon, TEST_ENGINE } from "../support/daemon.js";
import { slowModel } from "../support/synth.js";

const quiet = new Writable({ write: (_c, _e, cb) => cb() });
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("daemon lifecycle", () => {
  test("preloaded models are loaded and pinned at start-up; shutdown stops every runner (no orphans)", async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), "llmos-life-"));
    try {
      const base = {
        home,
        port: 0,
        threads: 1,
        gpu: "off" as const,
        logLevel: "warn" as const,
        contextSize: 256,
        parallel: 2,
        engine: TEST_ENGINE,
        cpuBackendBuild: "off" as const,
      };
      const first = await startDaemon(base, { logDestination: quiet });
      await first.store.importFile(STORIES, "stories");
      await first.store.importFile(TINY_RANDOM, "tiny");
      await first.close();
      const d = await startDaemon({ ...base, preload: ["stories", "tiny"] }, { logDestination: quiet });
      const ps = (await api(d, "GET", "/api/ps")).json.models;
      assert.deepEqual(ps.map((m: any) => [m.name, m.pinned, m.expiresAt]).sort(), [
        ["stories:latest", true, null],
        ["tiny:latest", true, null],
      ]);
      const pids = ps.map((m: any) => m.runnerPid as number);
      assert.ok(pids.every(alive));
      await d.close();
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(pids.filter(alive), [], "runner processes outlived the daemon");
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  test("store maintenance over HTTP: verify, disk usage, garbage collection", async () => {
    const d = await startTestDaemon({}, { importStories: "stories" });
    try {
      await d.store.copy("stories", "copy:v1");
      const verify = await api(d, "POST", "/api/store/verify", undefined, adminHeaders(d));
      assert.equal(verify.status, 200, verify.text);
      assert.equal(verify.json.checked, 1);
      assert.deepEqual(verify.json.corrupt, []);
      const du = await api(d, "GET", "/api/store/usage");
      assert.equal(du.status, 200);
      assert.equal(du.json.models.length, 2);
      assert.equal(du.json.blobBytes, 1_185_376, "two names, one shared blob");
      assert.equal((await api(d, "DELETE", "/api/models/stories")).status, 200);
      assert.equal((await api(d, "POST", "/api/store/gc", undefined, adminHeaders(d))).status, 200);
      assert.equal(
        (await api(d, "GET", "/api/store/usage")).json.blobBytes,
        1_185_376,
        "the copy still needs the blob",
      );
    } finally {
      await d.stop();
    }
  });

  test("queue positions and waits are visible; a request waiting too long gets 504 queue_timeout", async () => {
    const d = await startTestDaemon({ queueTimeoutMs: 600 }, { importStories: false });
    try {
      await d.store.importFile(await slowModel(), "slow");
      assert.equal((await api(d, "POST", "/api/models/slow/load", { parallel: 1 })).status, 200);
      const hold = api(d, "POST", "/v1/completions", {
        model: "slow",
        prompt: "hello",
        max_tokens: 400,
        ignore_eos: true,
      });
      const waiting = api(d, "POST", "/v1/completions", { model: "slow", prompt: "hi", max_tokens: 2, user: "bob" });
      let seen: any;
      for (let i = 0; i < 100 && !seen; i++) {
        const entry = (await api(d, "GET", "/api/ps")).json.models.find((m: any) => m.name === "slow:latest");
        if (entry.queue.length === 1) seen = entry;
        else await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(seen, "the queued request shows in /api/ps");
      assert.equal(seen.queue[0].position, 1);
      assert.equal(seen.queue[0].tenant, "user:bob");
      assert.ok(seen.queue[0].waitingMs >= 0);
      const r = await waiting;
      assert.equal(r.status, 504);
      assert.equal(r.json.error.code, "queue_timeout");
      assert.equal((await hold).status, 200);
      assert.match((await api(d, "GET", "/metrics")).text, /llmos_queue_wait_seconds_count\{model="slow:latest"\}/);
    } finally {
      await d.stop();
    }
  });
});
