import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { test } from "node:test";
import { startDaemon } from "../../src/daemon.js";

/** Files this process holds open under `dir` (Linux: /proc/self/fd). */
function openFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) out.push(target);
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

const quiet = new Writable({ write: (_c, _e, cb) => cb() });

test(
  "a start that fails (port taken) closes what it opened: no database file stays open, the home can be used again",
  { skip: process.platform !== "linux" && "needs /proc" },
  async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), "llmos-start-"));
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const config = { home, port, host: "127.0.0.1", gpu: "off" as const, logLevel: "error" as const };
      await assert.rejects(startDaemon(config, { logDestination: quiet }), /EADDRINUSE/);
      assert.deepEqual(openFilesUnder(home), [], "the failed start left files of its home open");
      // The same home serves a daemon afterwards.
      const d = await startDaemon({ ...config, port: 0 }, { logDestination: quiet });
      assert.ok(openFilesUnder(home).some((f) => f.endsWith("llmos.db")));
      await d.close();
      assert.deepEqual(openFilesUnder(home), []);
    } finally {
      blocker.close();
      rmSync(home, { recursive: true, force: true });
    }
  },
);
