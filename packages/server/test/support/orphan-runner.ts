/**
 * A stand-in daemon for the orphan test (run as its own process): starts one real runner with llmos' runner factory,
 * hands it a generation that stalls it (LLMOS_TEST_RUNNER_STALL must be set to the marker in argv[2]), prints the
 * runner's pid as JSON, and waits to be killed.
 */
import { ChildProcessRunnerFactory } from "../../src/runtime/child-process-runner-factory.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { STORIES_RUNNER_SPEC } from "./stories-runner.js";

const marker = process.argv[2] ?? "";
const factory = new ChildProcessRunnerFactory(createLogger("silent"), { stallTimeoutMs: 0 });
const runner = await factory.start({ ...STORIES_RUNNER_SPEC, engine: "llama-ffi" }, "orphan");
const g = runner.generate({
  prompt: `Once upon a time ${marker}`,
  maxTokens: 4,
  stop: [],
  sampling: {
    temperature: 0,
    topK: 40,
    topP: 1,
    minP: 0,
    repeatPenalty: 1,
    presencePenalty: 0,
    frequencyPenalty: 0,
    penaltyLastN: 64,
  },
});
g.result.catch(() => undefined);
process.stdout.write(`${JSON.stringify({ runner: runner.pid })}\n`);
setInterval(() => undefined, 60_000);
