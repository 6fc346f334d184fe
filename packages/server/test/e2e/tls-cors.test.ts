import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import https from "node:https";
import path from "node:path";
import { describe, test } from "node:test";
import { api, startTestDaemon } from "../support/daemon.js";

function httpsGet(url: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

describe("TLS and CORS", () => {
  test("--tls-cert/--tls-key serve HTTPS; plain HTTP clients cannot talk to it", async () => {
    const d = await startTestDaemon({}, { importStories: false });
    const dir = d.home;
    await d.stop();
    const key = path.join(dir + "-tls", "key.pem");
    const cert = path.join(dir + "-tls", "cert.pem");
    execFileSync("mkdir", ["-p", dir + "-tls"]);
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
      ],
      { stdio: "ignore" },
    );
    const t = await startTestDaemon({ tls: { cert, key } }, { importStories: false });
    try {
      assert.match(t.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const r = await httpsGet(`${t.url}/healthz`, readFileSync(cert));
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.body), { status: "ok" });
      await assert.rejects(fetch(t.url.replace("https", "http") + "/healthz"));
    } finally {
      await t.stop();
      execFileSync("rm", ["-rf", dir + "-tls"]);
    }
  });

  test("CORS is off by default", async () => {
    const d = await startTestDaemon({}, { importStories: false });
    try {
      const r = await api(d, "GET", "/api/models", undefined, { origin: "https://evil.example" });
      assert.equal(r.headers.get("access-control-allow-origin"), null);
      assert.equal(r.headers.get("x-content-type-options"), "nosniff");
    } finally {
      await d.stop();
    }
  });

  test("an allow-listed origin gets CORS headers and preflights without a key; others do not", async () => {
    const d = await startTestDaemon({ corsOrigins: ["https://app.example"] }, { importStories: false });
    try {
      await d.security.keys.create({ name: "k", scopes: ["admin"] });
      const pre = await fetch(`${d.url}/v1/chat/completions`, {
        method: "OPTIONS",
        headers: {
          origin: "https://app.example",
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization,content-type",
        },
      });
      assert.equal(pre.status, 204);
      assert.equal(pre.headers.get("access-control-allow-origin"), "https://app.example");
      assert.match(pre.headers.get("access-control-allow-headers") ?? "", /authorization/);
      const other = await fetch(`${d.url}/v1/chat/completions`, {
        method: "OPTIONS",
        headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
      });
      assert.equal(other.headers.get("access-control-allow-origin"), null);
      // A real request still needs its key, CORS or not.
      const r = await api(d, "GET", "/api/models", undefined, { origin: "https://app.example" });
      assert.equal(r.status, 401);
      assert.equal(r.headers.get("access-control-allow-origin"), "https://app.example");
    } finally {
      await d.stop();
    }
  });
});
