/**
 * Runners start as leaders of their own process group (`detached`), so that whatever they fork (ggml's backtrace
 * helper on an assert, for one) goes down with them. Kills the whole group; falls back to the process alone when it
 * leads no group. Never throws (the processes may be gone already).
 */
export function killProcessGroup(pid: number | undefined, signal: NodeJS.Signals = "SIGKILL"): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // gone already
    }
  }
}
