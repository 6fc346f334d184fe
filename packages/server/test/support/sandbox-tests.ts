/** What the sandbox tests share: when they run, and how they read what a hostile process reported. */
import { findExecutable } from "../../src/runtime/sandbox/sandbox-probe.js";
import type { TestDaemon } from "./daemon.js";

/**
 * Why the sandbox tests are skipped here, or false: skipped on a developer machine without Linux or bubblewrap,
 * never in CI (.ci/run installs it), where they fail instead.
 */
export const sandboxTestSkip: string | false = process.env.CI
  ? false
  : process.platform !== "linux"
    ? "sandboxes need Linux"
    : !findExecutable("bwrap")
      ? "bubblewrap is not installed (.ci/run installs it)"
      : false;

/** The JSON a hostile runner or worker logged under `kind` (the last one after log line `from`). */
export function loggedReport<T>(d: TestDaemon, kind: string, from: number): T | undefined {
  for (const line of d.logs.slice(from).reverse()) {
    const msg = (JSON.parse(line) as { msg?: string }).msg ?? "";
    if (msg.startsWith(`${kind} `)) return JSON.parse(msg.slice(kind.length + 1)) as T;
  }
  return undefined;
}
