import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { HostPolicy, hostMatches, parseHostHeader } from "../../src/http/host-guard.js";
import { OriginPolicy, originMatches } from "../../src/http/origin-policy.js";

describe("Host policy (DNS rebinding)", () => {
  const loopback = new HostPolicy({ host: "127.0.0.1", allowedHosts: [] });

  test("parses Host headers, refuses garbage", () => {
    assert.deepEqual(parseHostHeader("127.0.0.1:11435"), { hostname: "127.0.0.1", port: 11435 });
    assert.deepEqual(parseHostHeader("[::1]:8080"), { hostname: "::1", port: 8080 });
    assert.deepEqual(parseHostHeader("LocalHost."), { hostname: "localhost", port: null });
    for (const bad of ["", "a b", "x/y", "user@host", "[::1", "host:99999"])
      assert.equal(parseHostHeader(bad), undefined, bad);
  });

  test("loopback names and addresses pass; a rebinding name does not", () => {
    for (const h of ["localhost", "app.localhost", "127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"])
      assert.ok(loopback.allows(h), h);
    for (const h of ["evil.example", "127.0.0.1.nip.io", "localhost.evil.example", "10.0.0.5", "0.0.0.0"])
      assert.ok(!loopback.allows(h), h);
  });

  test("the bind address and LLMOS_ALLOWED_HOSTS (exact, *.domain, *) pass", () => {
    const p = new HostPolicy({ host: "10.0.0.5", allowedHosts: ["llm.internal", "*.corp.example"] });
    assert.ok(p.allows("10.0.0.5"));
    assert.ok(p.allows("llm.internal"));
    assert.ok(p.allows("a.corp.example") && p.allows("b.a.corp.example"));
    assert.ok(!p.allows("corp.example") && !p.allows("evilcorp.example") && !p.allows("10.0.0.6"));
    assert.ok(new HostPolicy({ host: "127.0.0.1", allowedHosts: ["*"] }).allows("anything.example"));
    assert.ok(hostMatches("x.y", ["X.Y"]));
  });

  test("a wildcard bind allows this machine's own addresses, not other IPs", () => {
    const p = new HostPolicy({ host: "0.0.0.0", allowedHosts: [] });
    assert.ok(p.allows("127.0.0.1"));
    assert.ok(!p.allows("203.0.113.77"));
    assert.ok(!p.allows("some-name.example"));
  });
});

describe("Origin policy (cross-site requests)", () => {
  const hosts = new HostPolicy({ host: "127.0.0.1", allowedHosts: [] });

  test("OLLAMA_ORIGINS syntax: exact origins, * wildcards, * alone", () => {
    assert.ok(originMatches("https://app.example", ["https://app.example"]));
    assert.ok(originMatches("http://localhost:5173", ["http://localhost:*"]));
    assert.ok(originMatches("chrome-extension://abc", ["chrome-extension://*"]));
    assert.ok(!originMatches("https://app.example.evil", ["https://app.example"]));
    assert.ok(!originMatches("http://evil.example", ["http://localhost:*"]));
    assert.ok(originMatches("null", ["*"]));
    // A pattern of many stars stays linear (no backtracking blow-up).
    assert.ok(!originMatches("a".repeat(5000), ["*a*a*a*a*a*a*a*a*a*a*b"]));
  });

  test("the daemon's own origin passes (any allowed host name, same port and scheme); others need the list", () => {
    const p = new OriginPolicy(hosts, [], "http:");
    assert.ok(p.allows("http://127.0.0.1:11435", "127.0.0.1:11435"));
    assert.ok(p.allows("http://localhost:11435", "127.0.0.1:11435"));
    assert.ok(!p.allows("http://127.0.0.1:8080", "127.0.0.1:11435"), "another port is another site");
    assert.ok(!p.allows("https://127.0.0.1:11435", "127.0.0.1:11435"), "another scheme");
    assert.ok(!p.allows("http://evil.example:11435", "evil.example:11435"), "a rebinding page");
    assert.ok(!p.allows("null", "127.0.0.1:11435"));
    const listed = new OriginPolicy(hosts, ["https://app.example"], "http:");
    assert.ok(listed.allows("https://app.example", "127.0.0.1:11435"));
    assert.ok(listed.listedAllows("https://app.example"));
    assert.ok(!listed.listedAllows("http://127.0.0.1:11435"), "own origin needs no CORS headers");
  });
});
