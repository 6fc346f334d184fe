import { spawn } from "node:child_process";

/**
 * TEST ONLY: makes this runner stall the way a deadlocked llama.cpp does, for the daemon's watchdog tests. When the
 * environment variable LLMOS_TEST_RUNNER_STALL is set (only tests set it) and a prompt or an embedding input
 * contains its value, the runner forks a helper into its process group (as ggml's backtrace helper is) and blocks
 * its main thread for good: the work was accepted, no progress follows, IPC goes unanswered.
 */
export function stallIfTestAsks(text: string): void {
  // The one read of the environment outside config, on purpose: this is a test hook, not a setting. It reaches the
  // runner the way a stall would, without the daemon's knowing: no config field, no load-spec field, no IPC message
  // that production code would carry for a test (the daemon under test passes its environment on to runners, and
  // runner-launcher.ts's KEPT_ENV keeps this variable for sandboxed ones).
  const marker = process.env.LLMOS_TEST_RUNNER_STALL;
  if (!marker || !text.includes(marker)) return;
  spawn("sleep", ["3600"], { stdio: "ignore" });
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
}
