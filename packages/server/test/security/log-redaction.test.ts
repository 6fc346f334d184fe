import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { Writable } from "node:stream";
import { describe, test } from "node:test";
import { REDACT_PATHS } from "../../src/http/auth/index.js";
import { createLogger, LOG_REDACT_PATHS } from "../../src/telemetry/logger.js";
import { api, startTestDaemon } from "../support/daemon.js";

function sink(): { stream: Writable; text: () => string } {
  let out = "";
  return {
    stream: new Writable({
      write(chunk, _enc, cb) {
        out += String(chunk);
        cb();
      },
    }),
    text: () => out,
  };
}

describe("the logger never writes credentials", () => {
  test("the list the tests check is the list the daemon's logger uses", () => {
    assert.equal(REDACT_PATHS, LOG_REDACT_PATHS);
  });

  test("every shape a credential is logged in comes out redacted, at every level", () => {
    const secret = "llmos_0123456789ab_" + "s".repeat(43);
    const admin = "llmos-admin-" + "a".repeat(43);
    const hf = "hf_" + "h".repeat(34);
    for (const level of ["trace", "debug", "info", "warn", "error", "fatal"] as const) {
      const out = sink();
      const logger = createLogger("trace", out.stream);
      logger[level]({ req: { headers: { authorization: `Bearer ${secret}`, "x-api-key": secret, host: "h" } } }, "r");
      logger[level]({ request: { headers: { authorization: `Bearer ${admin}` } } }, "r");
      logger[level]({ headers: { authorization: `Bearer ${secret}`, "x-api-key": admin } }, "raw headers");
      logger[level]({ issued: { secret, key: { id: "0123456789ab" } } }, "created");
      logger[level]({ secret, adminToken: admin, token: hf, hfToken: hf, apiKey: secret }, "top level");
      logger[level]({ config: { hfToken: hf }, client: { apiKey: secret }, auth: { authorization: admin } }, "nested");
      logger.child({ component: "x" })[level]({ authorization: `Bearer ${secret}` }, "child");
      const text = out.text();
      for (const s of [secret, admin, hf]) assert.equal(text.includes(s), false, `${level}: ${text}`);
      assert.match(text, /\[redacted\]/);
      assert.match(text, /"host":"h"/);
    }
  });

  test("a daemon logging at trace level writes no key, secret or admin token while they are used", async () => {
    const d = await startTestDaemon({ logLevel: "trace" });
    try {
      const token = readFileSync(path.join(d.home, "admin.token"), "utf8").trim();
      const asAdmin = { authorization: `Bearer ${token}` };
      const created = await api(d, "POST", "/api/keys", { name: "k", scopes: ["admin"] }, asAdmin);
      assert.equal(created.status, 201);
      const secret = created.json.secret as string;
      const rotated = await api(d, "POST", `/api/keys/${created.json.key.id}/rotate`, undefined, asAdmin);
      const secret2 = rotated.json.secret as string;
      await api(d, "GET", "/api/tags", undefined, { authorization: `Bearer ${secret2}` });
      await api(d, "GET", "/api/tags", undefined, { "x-api-key": secret2 });
      await api(d, "GET", "/api/tags", undefined, { authorization: `Bearer ${secret}` }); // the rotated-away one
      await api(d, "GET", "/api/tags", undefined, { authorization: "Bearer llmos_000000000000_" + "w".repeat(43) });
      await api(
        d,
        "POST",
        "/api/generate",
        { model: "stories", prompt: "x", raw: true, stream: false, options: { num_predict: 1 } },
        {
          authorization: `Bearer ${secret2}`,
        },
      );
      const logs = d.logs.join("\n");
      assert.ok(d.logs.length > 5, "trace level logs requests");
      for (const s of [token, secret, secret2, "w".repeat(43)]) assert.equal(logs.includes(s), false, logs);
    } finally {
      await d.stop();
    }
  });
});
