/**
 * The CPU placement interface the scheduler's thread assignment uses (`RunnerHandle.placeCpus`), on a real
 * sandboxed runner and the real kernel: the runner moves to other CPUs and gets a CPU-time cap while it runs, and
 * keeps generating.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { after, describe, test } from "node:test";
import { ChildProcessRunnerFactory, RUNNER_ENTRY } from "../../src/runtime/child-process-runner-factory.js";
import type { RunnerHandle } from "../../src/runtime/runner-handle.js";
import { RunnerLauncher } from "../../src/runtime/sandbox/runner-launcher.js";
import { probeSandbox } from "../../src/runtime/sandbox/sandbox-probe.js";
import { sandboxTestSkip } from "../support/sandbox-tests.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { STORIES_GOLDEN } from "../support/paths.js";
import { STORIES_RUNNER_SPEC } from "../support/stories-runner.js";

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

  test("a running runner moves to one CPU with half a core, and still generates", async (t) => {
    const logger = createLogger("warn", new Writable({ write: (_c, _e, cb) => cb() }));
    const launcher = new RunnerLauncher({
      mode: "auto",
      memoryMargin: 0.15,
      home,
      probe: probeSandbox({ mode: "auto", user: "nobody" }),
      entry: RUNNER_ENTRY,
      execArgv: process.execArgv,
      logger,
    });
    const support = await launcher.support();
    if (!support.cgroup.controllers.cpuset || !support.cgroup.controllers.cpu) {
      if (process.env.CI) assert.fail(`no cpuset/cpu cgroup controller: ${support.cgroup.reason}`);
      return t.skip(`no cpuset/cpu cgroup controller here: ${support.cgroup.reason}`);
    }
    runner = await new ChildProcessRunnerFactory(logger, { launcher }).start(
      { ...STORIES_RUNNER_SPEC, loraAdapters: [] },
      "stories",
      { memoryEstimateBytes: 256 * 1024 * 1024 },
    );
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
});
