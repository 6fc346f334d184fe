/** What tests that start one real runner by hand load into it: stories260K, one sequence of 256 tokens, one thread. */
import type { RunnerLoadSpec } from "../../src/runner/ipc-protocol.js";
import { TEST_ENGINE } from "./test-engine.js";
import { STORIES } from "./paths.js";

export const STORIES_RUNNER_SPEC: RunnerLoadSpec = {
  engine: TEST_ENGINE,
  gpu: false,
  cpuBackendDir: null,
  streamIntervalMs: 0,
  modelPath: STORIES,
  contextSize: 256,
  slots: 1,
  threads: 1,
  gpuLayers: 0,
};
