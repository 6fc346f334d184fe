import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { isLlmosError } from "../../src/errors.js";
import { classifyAddress, PullUrlPolicy } from "../../src/store/pull/url-policy.js";

const code = (c: string) => (e: unknown) => isLlmosError(e) && e.code === c;

describe("pull URL policy", () => {
  test("addresses are classified: loopback, private (RFC 1918, CGNAT, ULA), link-local, unspecified, public", () => {
    const cases: Record<string, string> = {
      "127.0.0.1": "loopback",
      "::1": "loopback",
      "::ffff:127.0.0.1": "loopback",
      "10.1.2.3": "private",
      "172.16.0.1": "private",
      "172.31.255.255": "private",
      "192.168.0.10": "private",
      "100.64.0.1": "private",
      "fd00::1": "private",
      "169.254.169.254": "link-local",
      "fe80::1": "link-local",
      "0.0.0.0": "unspecified",
      "::": "unspecified",
      "172.32.0.1": "public",
      "93.184.216.34": "public",
      "2606:4700::1111": "public",
    };
    for (const [a, kind] of Object.entries(cases)) assert.equal(classifyAddress(a), kind, a);
  });

  test("targets: https always, http only to listed hosts (host or host:port), nothing else", () => {
    const p = new PullUrlPolicy({ allowHttp: ["mirror.lan", "127.0.0.1:8080"] });
    p.checkTarget("https://huggingface.co/x");
    p.checkTarget("http://mirror.lan/x.gguf");
    p.checkTarget("http://mirror.lan:9000/x.gguf");
    p.checkTarget("http://127.0.0.1:8080/x.gguf");
    assert.throws(() => p.checkTarget("http://127.0.0.1:8081/x.gguf"), code("invalid_reference"));
    assert.throws(() => p.checkTarget("http://example.com/x.gguf"), /LLMOS_PULL_ALLOW_HTTP/);
    assert.throws(() => p.checkTarget("https://user:pw@example.com/x.gguf"), /credentials/);
    assert.throws(() => p.checkTarget("file:///etc/passwd"), code("invalid_reference"));
    assert.throws(() => new PullUrlPolicy().checkTarget("http://localhost/x"), code("invalid_reference"));
  });

  test("redirects of a public server may not go to http, loopback, private or link-local addresses", async () => {
    const p = new PullUrlPolicy();
    const from = new URL("https://93.184.216.34/model.gguf");
    await p.check(new URL("https://203.0.113.10/cdn/x"), "redirect", from);
    for (const next of [
      "http://203.0.113.10/cdn/x", // scheme downgrade
      "https://127.0.0.1/x",
      "https://[::1]/x",
      "https://10.0.0.8/x",
      "https://169.254.169.254/latest/meta-data/",
      "https://0.0.0.0/x",
      "https://user:pw@203.0.113.10/x",
    ])
      await assert.rejects(Promise.resolve(p.check(new URL(next), "redirect", from)), code("upstream_error"), next);
    // A token endpoint a registry names is checked the same way.
    await assert.rejects(Promise.resolve(p.check(new URL("https://127.0.0.1/token"), "token", from)), /loopback/);
  });

  test("a server on the local network may redirect within it; an allowed http host may redirect over http", async () => {
    const p = new PullUrlPolicy({ allowHttp: ["127.0.0.1"] });
    const from = new URL("http://127.0.0.1:9000/x.gguf");
    await p.check(new URL("http://127.0.0.1:9001/cdn/x.gguf"), "redirect", from);
    await assert.rejects(Promise.resolve(p.check(new URL("https://10.0.0.8/x"), "redirect", from)), /private address/);
    await assert.rejects(Promise.resolve(p.check(new URL("http://192.0.2.1/x"), "redirect", from)), /not https/);
  });
});
