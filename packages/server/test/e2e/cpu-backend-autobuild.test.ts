/**
 * Native speed by default: a daemon on a new install builds the CPU backend in the background, serves requests
 * meanwhile, reports the build in /api/system, /api/ps and its log, and runners started once it is installed use
 * it. A failed build is reported and not retried, not even by the next daemon on that home. Without the tools
 * there is a hint and no build.
 *
 * The build is injected (`cpuBackendBuilder`): it "builds" by installing the shipped CPU variant with a matching
 * manifest, which runners load as a backend built here. The real compile is tested once, in the CLI's tests.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { startDaemon } from "../../src/daemon.js";
import { CPU_BACKEND_MANIFEST, cpuVariantOf, releaseOf, sha256File } from "../../src/engine/llama-ffi/cpu-backend.js";
import { inspectBuiltCpuBackend, probeCpuBackend } from "../../src/engine/llama-ffi/cpu-backend-build.js";
import { findLibraryFiles } from "../../src/engine/llama-ffi/library-files.js";
import type { CpuBackendBuilder, CpuBackendBuildStep } from "../../src/runtime/cpu-backend-autobuild.js";
import { adminHeaders, api, startTestDaemon, type TestDaemon } from "../support/daemon.js";

const skip = process.platform !== "linux" ? "the CPU backend is built on Linux only" : false;

/** Polls `check` until it returns a value (generous: the machine is shared). */
async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A builder whose build waits for `release()`, then installs the shipped CPU variant as if built here. */
function fakeBuilder(shippedLibrary: string, opts: { fail?: string; missingTool?: string } = {}) {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const calls = { build: 0 };
  const builder: CpuBackendBuilder = {
    inspect: inspectBuiltCpuBackend,
    missingTool: async () => opts.missingTool ?? null,
    async build({ dir, onProgress }) {
      calls.build++;
      const steps: CpuBackendBuildStep[] = [
        { phase: "probe", message: "finding the CPU variant" },
        { phase: "compile", percent: 10, message: "ggml-cpu.c" },
        { phase: "compile", percent: 60, message: "ops.cpp" },
      ];
      for (const s of steps) onProgress(s);
      await gate;
      if (opts.fail) throw new Error(opts.fail);
      const files = findLibraryFiles();
      const library = path.basename(shippedLibrary);
      mkdirSync(dir, { recursive: true });
      copyFileSync(shippedLibrary, path.join(dir, library));
      writeFileSync(
        path.join(dir, CPU_BACKEND_MANIFEST),
        JSON.stringify({
          release: releaseOf(files),
          variant: cpuVariantOf(library),
          library,
          ggmlBaseSha256: sha256File(files.ggmlBase),
          compiler: "test",
          builtAt: new Date().toISOString(),
        }),
      );
      return { seconds: 1 };
    },
  };
  return { builder, release: () => open(), calls };
}

/** The build's status in GET /api/system (an admin route: the admin token, even on loopback). */
const buildOf = async (d: { url: string; home: string }) =>
  (await api(d, "GET", "/api/system", undefined, adminHeaders(d))).json.cpuBackend.build;

describe("background CPU-backend build", { skip }, () => {
  let shippedLibrary: string;
  before(async () => {
    shippedLibrary = (await probeCpuBackend(null)).library!;
  });

  test("builds while requests are served; models loaded afterwards use it", { timeout: 180_000 }, async () => {
    const fake = fakeBuilder(shippedLibrary);
    const d = await startTestDaemon({ cpuBackendBuild: "auto" }, { options: { cpuBackendBuilder: fake.builder } });
    try {
      const building = await until("the build to compile", async () => {
        const b = await buildOf(d);
        return b.state === "building" && b.percent === 60 ? b : undefined;
      });
      assert.equal(building.phase, "compile");
      const ps = (await api(d, "GET", "/api/ps")).json;
      assert.equal(ps.cpuBackendBuild.state, "building");
      // Requests do not wait for the build; this runner starts on the shipped backend.
      const r = await api(d, "POST", "/v1/completions", {
        model: "stories",
        prompt: "Once upon a time",
        max_tokens: 8,
        temperature: 0,
      });
      assert.equal(r.status, 200, r.text);
      assert.match(r.json.choices[0].text, /^, there was/);
      const before = (await api(d, "GET", "/api/ps")).json.models[0];
      assert.equal(before.cpuBackend.source, "shipped");

      fake.release();
      const ready = await until("the build to finish", async () => {
        const b = await buildOf(d);
        return b.state === "ready" ? b : undefined;
      });
      assert.match(ready.message, /models loaded from now on use it/);
      assert.equal(fake.calls.build, 1);
      assert.ok(
        d.logs.some((l) => /CPU backend build: compile/.test(l)),
        "progress in the log",
      );
      assert.ok(d.logs.some((l) => /CPU backend built in/.test(l)));
      // The next runner registers it.
      await api(d, "POST", "/api/models/stories/unload");
      await api(d, "POST", "/api/models/stories/load", {});
      const after = (await api(d, "GET", "/api/ps")).json.models[0];
      assert.deepEqual(after.cpuBackend, { source: "built-here", variant: cpuVariantOf(shippedLibrary) });
      // Where runners are sandboxed (CI's machines and this one), the home folder is hidden from them: the built
      // backend under it is bound back read-only, and the sandboxed runner (a dropped user when the daemon is
      // root) loads it.
      const system = (await api(d, "GET", "/api/system", undefined, adminHeaders(d))).json;
      if (system.sandbox.effective === "sandboxed") assert.equal(after.sandbox?.sandboxed, true);
      const again = await api(d, "POST", "/v1/completions", {
        model: "stories",
        prompt: "Once upon a time",
        max_tokens: 8,
        temperature: 0,
      });
      assert.equal(again.json.choices[0].text, r.json.choices[0].text);
    } finally {
      fake.release();
      await d.stop();
    }
  });

  describe("a failed build", () => {
    let home: string;
    const quiet = () => {
      const logs: string[] = [];
      const sink = new Writable({
        write(chunk, _e, cb) {
          logs.push(String(chunk));
          cb();
        },
      });
      return { logs, sink };
    };
    const start = (builder: CpuBackendBuilder, sink: Writable) =>
      startDaemon(
        { home, port: 0, threads: 1, gpu: "off", logLevel: "info", cpuBackendBuild: "auto", engine: "llama-ffi" },
        { logDestination: sink, cpuBackendBuilder: builder },
      );
    before(() => {
      home = mkdtempSync(path.join(os.tmpdir(), "llmos-autobuild-"));
    });
    after(() => rmSync(home, { recursive: true, force: true }));

    test("is reported, recorded, and not retried by the next daemon on that home", { timeout: 60_000 }, async () => {
      const failing = fakeBuilder(shippedLibrary, { fail: "cmake --build exited with 2\nerror: out of disk" });
      failing.release();
      const first = quiet();
      const d1 = await start(failing.builder, first.sink);
      try {
        const failed = await until("the build to fail", async () => {
          const b = await buildOf({ url: d1.url, home });
          return b.state === "failed" ? b : undefined;
        });
        assert.match(failed.message, /cmake --build exited with 2/);
        assert.match(failed.message, /llmos build-cpu-backend/);
        assert.equal((await api(d1, "GET", "/api/ps")).json.cpuBackendBuild.state, "failed");
        assert.ok(existsSync(path.join(home, "engine", "ggml-cpu.build-failed.json")));
        assert.ok(first.logs.some((l) => /background build of the CPU backend failed/.test(l)));
      } finally {
        await d1.close();
      }
      const second = quiet();
      const d2 = await start(failing.builder, second.sink);
      try {
        const b = await until("the second daemon's decision", async () => {
          const s = await buildOf({ url: d2.url, home });
          return s.state !== "off" || s.message !== "not decided yet" ? s : undefined;
        });
        assert.equal(b.state, "failed");
        assert.equal(failing.calls.build, 1, "not built again");
      } finally {
        await d2.close();
      }
    });
  });

  test("without the build tools: a one-line hint and no build", async () => {
    const fake = fakeBuilder(shippedLibrary, { missingTool: "cmake" });
    let d: TestDaemon | undefined;
    try {
      d = await startTestDaemon(
        { cpuBackendBuild: "auto" },
        { importStories: false, options: { cpuBackendBuilder: fake.builder } },
      );
      const b = await until("the decision", async () => {
        const s = await buildOf(d!);
        return s.state === "unavailable" ? s : undefined;
      });
      assert.match(b.message, /llmos build-cpu-backend.*cmake is missing/);
      assert.equal(fake.calls.build, 0);
      assert.equal(d.logs.filter((l) => /llmos build-cpu-backend/.test(l)).length, 1);
    } finally {
      await d?.stop();
    }
  });

  test("LLMOS_CPU_BACKEND_BUILD=off only hints; another CPU backend setting is left alone", async () => {
    const fake = fakeBuilder(shippedLibrary);
    const off = await startTestDaemon({}, { importStories: false, options: { cpuBackendBuilder: fake.builder } });
    const shipped = await startTestDaemon(
      { cpuBackendBuild: "auto", cpuBackend: "shipped" },
      { importStories: false, options: { cpuBackendBuilder: fake.builder } },
    );
    try {
      assert.equal((await buildOf(off)).state, "off");
      assert.match((await buildOf(off)).message, /llmos build-cpu-backend/);
      assert.equal((await api(off, "GET", "/api/ps")).json.cpuBackendBuild, undefined);
      assert.deepEqual(await buildOf(shipped), { state: "off", message: "LLMOS_CPU_BACKEND is shipped" });
      assert.equal(fake.calls.build, 0);
    } finally {
      await off.stop();
      await shipped.stop();
    }
  });
});
