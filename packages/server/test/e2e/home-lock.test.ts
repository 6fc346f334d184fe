import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { startDaemon } from "../../src/daemon.js";
import { isLlmosError } from "../../src/errors.js";

const base = { port: 0, threads: 1, gpu: "off" as const, logLevel: "silent" as const };

describe("one daemon per LLMOS_HOME", () => {
  test("a second daemon on a home in use is refused before it writes anything", async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "llmos-lock-"));
    const first = await startDaemon({ ...base, home });
    try {
      const token = fs.readFileSync(path.join(home, "admin.token"), "utf8");
      const marker = path.join(home, "models", "tmp", "write-in-flight");
      fs.writeFileSync(marker, "x");
      await assert.rejects(startDaemon({ ...base, home }), (e: unknown) => {
        assert.ok(isLlmosError(e) && e.code === "conflict", String(e));
        assert.match(e.message, new RegExp(`another llmos daemon \\(pid ${process.pid}, ${first.url}`));
        return true;
      });
      assert.equal(fs.readFileSync(path.join(home, "admin.token"), "utf8"), token);
      assert.ok(fs.existsSync(marker));
      assert.equal((await fetch(`${first.url}/healthz`)).status, 200);
    } finally {
      await first.close();
    }
    // Released on close: the home can be used again.
    const again = await startDaemon({ ...base, home });
    await again.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  test("a start that fails (port in use) releases what it opened: lock, admin token, database", async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "llmos-lock-"));
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      await assert.rejects(startDaemon({ ...base, home, port }), /EADDRINUSE|address already in use/);
      assert.equal(fs.existsSync(path.join(home, "admin.token")), false, "the admin token is removed");
      const next = await startDaemon({ ...base, home });
      assert.equal((await fetch(`${next.url}/healthz`)).status, 200);
      await next.close();
    } finally {
      await new Promise<void>((r) => busy.close(() => r()));
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
