/**
 * The CPU placement interface the scheduler's thread assignment uses (`RunnerHandle.placeCpus`), on a real
 * sandboxed runner and the real kernel: the runner moves to other CPUs and gets a CPU-time cap while it runs, and
 * keeps generating. And a prewarm's start (`RunnerResources.background`) runs on idle CPU time until it is wanted
 * or loaded.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { after, describe, test } from "node:test";
import { ChildProcessRunnerFactory, RUNNER_ENTRY } from "../../src/runtime/child-process-runner-factory.js";
import type { RunnerHandle, RunnerResources } from "../../src/runtime/runner-handle.js";
import { readCpuBackground } from "../../src/runtime/sandbox/cgroup-files.js";
import { RunnerLauncher } from "../../src/runtime/sandbox/runner-launcher.js";
import { probeSandbox } from "../../src/runtime/sandbox/sandbox-probe.js";
import { sandboxTestSkip } from "../support/sandbox-tests.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { TEST_ENGINE } from "../support/daemon.js";
import { STORIES, STORIES_GOLDEN } from "../support/paths.js";

/** The CPUs a process may run on, as the kernel says. */
function cpusAllowed(pid: number): string {
  return /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]!;
}

describe("runner CPU placement (real runner, real kernel)", { skip: sandboxTestSkip, timeout: 120_000 }, () => {
  const home = mkdtempSync(path.join(os.tmpdir(), "llmos-placement-"));
  let runner: RunnerHandle | undefined;
  after(async () => {
    await runner?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  const logger = createLogger("warn", new Writable({ write: (_c, _e, cb) => cb() }));
  const probe = probeSandbox({ mode: "auto", user: "nobody" });
  const launcher = new RunnerLauncher({
    mode: "auto",
    memoryMargin: 0.15,
    home,
    probe,
    entry: RUNNER_ENTRY,
    execArgv: process.execArgv,
    logger,
  });
  const factory = new ChildProcessRunnerFactory(logger, { launcher });
  const start = (resources: RunnerResources) =>
    factory.start(
      {
        engine: TEST_ENGINE,
        gpu: false,
        cpuBackendDir: null,
        streamIntervalMs: 0,
        modelPath: STORIES,
        contextSize: 256,
        slots: 1,
        threads: 1,
        gpuLayers: 0,
        loraAdapters: [],
      },
      "stories",
      resources,
    );
  /** Skips (fails in CI) without the cgroup controllers the test needs. */
  const need = async (t: { skip(reason: string): void }, ...controllers: ("cpuset" | "cpu")[]) => {
    const support = await launcher.support();
    const missing = controllers.filter((c) => !support.cgroup.controllers[c]);
    if (missing.length === 0) return true;
    if (process.env.CI) assert.fail(`no ${missing.join("/")} cgroup controller: ${support.cgroup.reason}`);
    t.skip(`no ${missing.join("/")} cgroup controller here: ${support.cgroup.reason}`);
    return false;
  };

  test("a running runner moves to one CPU with half a core, and still generates", async (t) => {
    if (!(await need(t, "cpuset", "cpu"))) return;
    runner = await start({ memoryEstimateBytes: 256 * 1024 * 1024 });
    const all = runner.sandbox!.cpus!;
    assert.equal(cpusAllowed(runner.pid!), all, "starts on the daemon's CPUs");
    runner.placeCpus({ cpus: "0", maxCores: 0.5 });
    assert.equal(runner.sandbox!.cpus, "0");
    assert.equal(runner.sandbox!.cpuMaxCores, 0.5);
    assert.equal(cpusAllowed(runner.pid!), "0");
    const generation = runner.generate({
      prompt: "Once upon a time",
      maxTokens: 30,
      sampling: {
        temperature: 0,
        topK: 40,
        topP: 0.95,
        minP: 0.05,
        repeatPenalty: 1,
        presencePenalty: 0,
        frequencyPenalty: 0,
        penaltyLastN: 64,
      },
      stop: [],
    });
    let text = "";
    for await (const chunk of generation) text += chunk.text;
    assert.ok(text.startsWith(STORIES_GOLDEN), text);
    runner.placeCpus({ cpus: null, maxCores: null });
    assert.equal(runner.sandbox!.cpus, all);
    assert.equal(runner.sandbox!.cpuMaxCores, null);
  });

  test("a prewarm's start runs on idle CPU time until a request wants it, and a loaded one in the foreground", async (t) => {
    if (!(await need(t, "cpu"))) return;
    assert.equal(factory.backgroundStarts(), true);
    const home = (await probe).cgroupHomes.find((h) => h.controller === "cpu")!;
    const mine = new RegExp(`^llmos-${process.pid}-\\d+$`);
    const before = new Set(readdirSync(home.parentDir).filter((n) => mine.test(n)));
    /** The new runner's group, and whether it runs in the background, sampled every millisecond of the start. */
    const watch = (onBackground?: () => void) => {
      const seen: boolean[] = [];
      const timer = setInterval(() => {
        const group = readdirSync(home.parentDir).find((n) => mine.test(n) && !before.has(n));
        if (!group) return;
        try {
          const background = readCpuBackground(home.version, path.join(home.parentDir, group));
          if (seen.at(-1) !== background) seen.push(background);
          if (background) onBackground?.();
        } catch {
          // Read while it is made or removed.
        }
      }, 1);
      return { seen, stop: () => clearInterval(timer) };
    };
    // Nobody asks for it: in the background from the first instruction to the loaded model, then in the foreground.
    const quiet = watch();
    const prewarmed = await start({
      memoryEstimateBytes: 256 * 1024 * 1024,
      background: { wanted: new Promise(() => {}) },
    });
    quiet.stop();
    try {
      assert.deepEqual(quiet.seen.slice(0, 1), [true], "in the background from its group's first moment");
      assert.equal(quiet.seen.indexOf(false, 1), -1, "and until its model had loaded");
      assert.equal(
        readCpuBackground(home.version, groupOf(prewarmed.pid!, home.parentDir)),
        false,
        "loaded: foreground",
      );
    } finally {
      await prewarmed.stop();
    }
    for (const n of readdirSync(home.parentDir)) if (mine.test(n)) before.add(n);
    // A request comes while it starts: the foreground at once, before the load is over.
    let want!: () => void;
    const wanted = new Promise<void>((resolve) => (want = resolve));
    const asked = watch(() => want());
    let loaded = false;
    const started = start({ memoryEstimateBytes: 256 * 1024 * 1024, background: { wanted } }).then((r) => {
      loaded = true;
      return r;
    });
    while (asked.seen.length < 2 && !loaded) await new Promise((r) => setTimeout(r, 1));
    const loadedWhenForeground = loaded;
    asked.stop();
    await (await started).stop();
    assert.deepEqual(asked.seen.slice(0, 2), [true, false]);
    assert.equal(loadedWhenForeground, false, "in the foreground while its model was still loading");
  });
});

/** The folder of the cgroup `pid` is in, under `parentDir`. */
function groupOf(pid: number, parentDir: string): string {
  const lines = readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n");
  const name = lines.map((l) => /\/(llmos-\d+-\d+)$/.exec(l)?.[1]).find(Boolean);
  assert.ok(name, `pid ${pid} is in no runner group: ${lines.join("; ")}`);
  return path.join(parentDir, name);
}
