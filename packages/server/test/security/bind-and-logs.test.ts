import { Writable } from "node:stream";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import pino from "pino";
import { defaultConfig } from "../../src/config/config.js";
import { isLlmosError } from "../../src/errors.js";
import { REDACT_PATHS } from "../../src/http/auth/index.js";
import {
  assertSafeBind,
  isLoopbackAddress,
  isLoopbackHost,
  modelAllowed,
  type SecurityLogger,
} from "../../src/security/index.js";

function capture(): { logger: pino.Logger; lines: () => string } {
  let out = "";
  const stream = new Writable({
    write(chunk, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  });
  const logger = pino({ redact: { paths: [...REDACT_PATHS], censor: "[redacted]" } }, stream);
  return { logger, lines: () => out };
}

describe("assertSafeBind", () => {
  const config = defaultConfig();

  test("loopback binds are always fine", () => {
    for (const host of ["127.0.0.1", "::1", "localhost", "127.0.0.2"]) assertSafeBind({ ...config, host }, false);
  });

  test("a non-loopback bind without auth throws a clear forbidden error", () => {
    for (const host of ["0.0.0.0", "::", "192.168.1.10"]) {
      assert.throws(
        () => assertSafeBind({ ...config, host }, false),
        (e: unknown) =>
          isLlmosError(e) &&
          e.code === "forbidden" &&
          e.message.includes(host) &&
          /llmos keys create/.test(e.message) &&
          /insecure-no-auth/.test(e.message),
      );
    }
  });

  test("auth on makes it fine; insecureNoAuth allows it with a loud warning", () => {
    assertSafeBind({ ...config, host: "0.0.0.0" }, true);
    const { logger, lines } = capture();
    const typed: SecurityLogger = logger; // a pino logger is a SecurityLogger
    assertSafeBind({ ...config, host: "0.0.0.0", insecureNoAuth: true }, false, typed);
    const line = JSON.parse(lines().trim()) as { level: number; msg: string };
    assert.equal(line.level, 40);
    assert.match(line.msg, /INSECURE.*0\.0\.0\.0.*WITHOUT AUTHENTICATION/);
  });
});

describe("helpers", () => {
  test("loopback detection", () => {
    for (const a of ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1", "[::1]", "0:0:0:0:0:0:0:1"])
      assert.ok(isLoopbackAddress(a), a);
    for (const a of [
      "10.1.2.3",
      "::ffff:10.0.0.1",
      "0.0.0.0",
      "::",
      "",
      undefined,
      "localhost",
      "128.0.0.1",
      "fe80::1",
    ])
      assert.ok(!isLoopbackAddress(a), String(a));
    assert.ok(isLoopbackHost("localhost"));
    assert.ok(!isLoopbackHost("0.0.0.0"));
  });

  test("model globs", () => {
    assert.ok(modelAllowed(null, "anything"));
    assert.ok(!modelAllowed([], "anything"));
    assert.ok(modelAllowed(["llama*"], "llama3.2:1b"));
    assert.ok(modelAllowed(["llama3"], "llama3:latest"));
    assert.ok(modelAllowed(["llama3:latest"], "llama3"));
    assert.ok(!modelAllowed(["llama3"], "llama3:8b"));
    assert.ok(modelAllowed(["qwen?"], "qwen2"));
    assert.ok(!modelAllowed(["qwen?"], "qwen25"));
    assert.ok(!modelAllowed(["a.b"], "axb"), "dots are literal");
    assert.ok(modelAllowed(["hf.co/org/*"], "hf.co/org/repo:Q4_K_M"));
  });

  test("REDACT_PATHS keep keys out of pino logs", () => {
    const { logger, lines } = capture();
    const secret = "llmos_0123456789ab_" + "s".repeat(43);
    logger.info(
      {
        req: {
          method: "GET",
          url: "/x",
          headers: { authorization: `Bearer ${secret}`, "x-api-key": secret, host: "h" },
        },
      },
      "request",
    );
    logger.info({ headers: { authorization: `Bearer ${secret}` } }, "raw headers");
    logger.info({ issued: { secret, key: { id: "0123456789ab" } } }, "created");
    logger.info({ secret }, "top level");
    const out = lines();
    assert.equal(out.includes("s".repeat(43)), false, out);
    assert.match(out, /\[redacted\]/);
    assert.match(out, /"host":"h"/);
  });
});
