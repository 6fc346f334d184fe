import { spawn } from "node:child_process";

/**
 * TEST ONLY: makes this runner stall the way a deadlocked llama.cpp does, for the daemon's watchdog tests. When the
 * environment variable LLMOS_TEST_RUNNER_STALL is set (only tests set it) and a prompt or an embedding input
 * contains its value, the runner forks a helper into its process group (as ggml's backtrace helper is) and blocks
 * its main thread for good: the work was accepted, no progress follows, IPC goes unanswered.
 */
export function stallIfTestAsks(text: string): void {
  // The runner's one read of the environment, and a test hook: config is for the daemon's settings.
  const marker = process.env.LLMOS_TEST_RUNNER_STALL;
  if (!marker || !text.includes(marker)) return;
  spawn("sleep", ["3600"], { stdio: "ignore" });
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
}
