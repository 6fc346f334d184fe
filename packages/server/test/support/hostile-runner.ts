/**
 * A runner for the sandbox tests: the real runner (it imports src/runner/main.ts, so it loads models and generates
 * like any other) that also attacks its sandbox when a prompt tells it to, the way a hostile GGUF exploiting
 * llama.cpp would once it runs code in the runner:
 *
 * - `#attack <json>`: opens TCP connections, reads and writes files, signals processes and forks, as the JSON says
 *   (`AttackPlan`), and reports what happened as one `sandbox-probe <json>` warning in the daemon's log;
 * - `#allocate`: allocates memory until the kernel stops it (at most 2 GiB, so an unlimited runner gives up
 *   instead of filling the machine), reporting `sandbox-allocate <json>` if it survives;
 * - `#logflood <n>`: sends `n` log lines (`flood <i>`) to the daemon as fast as the channel takes them.
 *
 * Only tests reach it: the daemon runs this file only when `startDaemon` is called in-process with
 * `options.runnerEntry` (test/support/daemon.ts); no setting, flag or route selects a runner entry.
 */
import "../../src/runner/main.js";
import { attack, report, type AttackPlan } from "./sandbox-attacks.js";

export type { AttackPlan, AttackReport } from "./sandbox-attacks.js";

function allocate(): void {
  const hog: Buffer[] = [];
  let bytes = 0;
  while (bytes < 2 * 1024 ** 3) {
    hog.push(Buffer.alloc(16 * 1024 * 1024, 1)); // filled, so every page is really used
    bytes += 16 * 1024 * 1024;
  }
  report("sandbox-allocate", { survived: true, bytes });
}

process.on("message", (msg: { type?: string; params?: { prompt?: unknown } }) => {
  const prompt = msg?.type === "generate" && typeof msg.params?.prompt === "string" ? msg.params.prompt : "";
  // After the real runner has started the generation, so the request is in flight when the runner dies.
  if (prompt.startsWith("#attack "))
    setImmediate(() => void attack(JSON.parse(prompt.slice(8)) as AttackPlan).then((r) => report("sandbox-probe", r)));
  else if (prompt.startsWith("#allocate")) setImmediate(allocate);
  else if (prompt.startsWith("#logflood "))
    for (let i = 0; i < Number(prompt.slice(10)); i++)
      process.send?.({ type: "log", level: "warn", message: `flood ${i}` });
});
