import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { loadConfig } from "../../src/config/load.js";
import { LlmosError } from "../../src/errors.js";
import { isSimpleGoTemplate } from "../../src/inference/chat-template.js";
import { findCredential } from "../../src/store/registry/credentials.js";
import { parseOciManifest } from "../../src/store/registry/oci-manifest.js";
import { definitionFromLayers, planLayers, textLayersOf } from "../../src/store/registry/ollama-layers.js";
import { parseChallenge } from "../../src/store/registry/registry-auth.js";
import { parseRegistrySetting } from "../../src/store/registry/registry-target.js";
import { PullUrlPolicy } from "../../src/store/pull/url-policy.js";
import { tempDir } from "./helpers.js";

const d = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;

describe("registry pieces", () => {
  test("WWW-Authenticate challenges", () => {
    assert.deepEqual(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/x:pull"',
      ),
      {
        scheme: "bearer",
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:library/x:pull",
      },
    );
    assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), { scheme: "basic", realm: "Registry Realm" });
    assert.equal(parseChallenge("Negotiate abc"), undefined);
    assert.equal(parseChallenge(null), undefined);
  });

  test("credentials: LLMOS_OCI_AUTH first, then Docker's config.json (Docker Hub's aliases)", async () => {
    const t = tempDir();
    try {
      const dockerConfigPath = path.join(t.dir, "config.json");
      fs.writeFileSync(
        dockerConfigPath,
        JSON.stringify({
          auths: {
            "https://index.docker.io/v1/": { auth: Buffer.from("hubuser:hubpass").toString("base64") },
            "ghcr.io": { registrytoken: "ghp_x" },
            "mirror.corp:5000": { username: "u", password: "p:with:colons" },
          },
          credsStore: "desktop",
        }),
      );
      const sources = { byHost: { "ghcr.io": { username: "env", password: "wins" } }, dockerConfigPath };
      assert.deepEqual(await findCredential("registry-1.docker.io", sources), {
        username: "hubuser",
        password: "hubpass",
      });
      assert.deepEqual(await findCredential("ghcr.io", sources), { username: "env", password: "wins" });
      assert.deepEqual(await findCredential("ghcr.io", { dockerConfigPath }), { token: "ghp_x" });
      assert.deepEqual(await findCredential("mirror.corp:5000", sources), { username: "u", password: "p:with:colons" });
      assert.equal(await findCredential("other.example", sources), undefined);
      assert.equal(await findCredential("ghcr.io", { dockerConfigPath: path.join(t.dir, "missing.json") }), undefined);
    } finally {
      t.cleanup();
    }
  });

  test("config: LLMOS_OCI_REGISTRY, LLMOS_OCI_AUTH, DOCKER_CONFIG", () => {
    const c = loadConfig({
      env: {
        LLMOS_OCI_REGISTRY: "http://127.0.0.1:5000/",
        LLMOS_OCI_AUTH: "ghcr.io=me:p@ss:word  Registry.Corp=tok123",
        DOCKER_CONFIG: "/etc/docker-client",
      },
    });
    assert.equal(c.ociRegistry, "http://127.0.0.1:5000");
    assert.deepEqual(c.ociAuth, {
      "ghcr.io": { username: "me", password: "p@ss:word" },
      "registry.corp": { token: "tok123" },
    });
    assert.equal(c.dockerConfigPath, "/etc/docker-client/config.json");
    assert.equal(loadConfig({ env: {} }).ociRegistry, "registry.ollama.ai");
    assert.deepEqual(parseRegistrySetting("mirror.corp:5000"), { host: "mirror.corp:5000", scheme: "https" });
    assert.deepEqual(parseRegistrySetting(c.ociRegistry), { host: "127.0.0.1:5000", scheme: "http" });
    assert.throws(() => loadConfig({ env: { LLMOS_OCI_REGISTRY: "https://x.example/path" } }), /without a path/);
    assert.throws(
      () => loadConfig({ env: { LLMOS_OCI_AUTH: "noequals" } }),
      (e: Error) => !/noequals/.test(e.message),
    );
  });

  test("URL policy (the pull policy registries share): https anywhere, http to allowed hosts, no redirect into loopback", async () => {
    const policy = new PullUrlPolicy({ allowHttp: ["127.0.0.1"] });
    const ok = (url: string, hop: "request" | "redirect" | "token" = "request", from?: string) =>
      Promise.resolve().then(() => policy.check(new URL(url), hop, from ? new URL(from) : undefined));
    await ok("https://registry.ollama.ai/v2/");
    await ok("http://127.0.0.1:5000/v2/");
    await ok("http://127.0.0.1:6000/blob", "redirect", "http://127.0.0.1:5000/v2/");
    const refused = (code: string, p: Promise<unknown>) =>
      assert.rejects(p, (e: unknown) => e instanceof LlmosError && e.code === code);
    await refused("invalid_reference", ok("http://registry.example.com/v2/"));
    await refused("upstream_error", ok("http://cdn.example.com/x", "redirect", "https://registry.example.com/v2/"));
    await refused("upstream_error", ok("http://127.0.0.1/admin", "redirect", "https://registry.example.com/v2/"));
    await refused("upstream_error", ok("https://localhost/token", "token", "https://registry.example.com/v2/"));
    await refused("upstream_error", ok("ftp://x.example/y", "redirect", "https://registry.example.com/v2/"));
  });

  test("manifests: both media types; indexes and other types refused", () => {
    const body = (m: object) => Buffer.from(JSON.stringify(m));
    const base = { schemaVersion: 2, config: { mediaType: "c", digest: d(1), size: 2 }, layers: [] };
    assert.equal(
      parseOciManifest(body(base), "application/vnd.oci.image.manifest.v1+json", "x").mediaType,
      "application/vnd.oci.image.manifest.v1+json",
    );
    assert.equal(
      parseOciManifest(body({ ...base, mediaType: "application/vnd.docker.distribution.manifest.v2+json" }), null, "x")
        .mediaType,
      "application/vnd.docker.distribution.manifest.v2+json",
    );
    const upstream = (fn: () => unknown, text: RegExp) =>
      assert.throws(fn, (e: unknown) => e instanceof LlmosError && e.code === "upstream_error" && text.test(e.message));
    upstream(() => parseOciManifest(body({ schemaVersion: 2, manifests: [] }), null, "x"), /index/);
    upstream(() => parseOciManifest(body(base), "application/vnd.docker.distribution.manifest.v1+json", "x"), /media/);
    upstream(() => parseOciManifest(Buffer.from("{"), null, "x"), /not JSON/);
    upstream(
      () => parseOciManifest(body({ ...base, layers: [{ mediaType: "m", digest: "sha256:zz", size: 1 }] }), null, "x"),
      /layer 0/,
    );
  });

  test("Ollama's layers map onto the definition and back", () => {
    const layer = (mediaType: string, n: number) => ({ mediaType, digest: d(n), size: 10 });
    const plan = planLayers(
      [
        layer("application/vnd.ollama.image.model", 1),
        layer("application/vnd.ollama.image.template", 2),
        layer("application/vnd.ollama.image.adapter", 3),
        layer("application/vnd.ollama.image.projector", 4),
        layer("application/x-unknown", 5),
        layer("application/vnd.ollama.image.license", 6),
      ],
      "m",
    );
    assert.equal(plan.model.digest, d(1));
    assert.deepEqual(
      plan.texts.map((t) => t.role),
      ["template", "license"],
    );
    assert.equal(plan.adapters.length, 1);
    assert.equal(plan.projectors.length, 1);
    assert.equal(plan.unknown.length, 1);
    assert.throws(() => planLayers([layer("application/vnd.ollama.image.template", 2)], "m"), /no model weights/);
    const warnings: string[] = [];
    const definition = definitionFromLayers(
      [
        { role: "template", text: "{{ .Prompt }}" },
        { role: "system", text: "Be brief." },
        { role: "params", text: '{"stop":["<|end|>","<|user|>"],"temperature":0.6,"future_knob":1}' },
        { role: "messages", text: '[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]' },
        { role: "license", text: "A" },
        { role: "license", text: "B" },
      ],
      "reg/x:1",
      "reg/x:1",
      (m) => warnings.push(m),
    );
    assert.deepEqual(definition, {
      from: "reg/x:1",
      template: "{{ .Prompt }}",
      system: "Be brief.",
      parameters: { stop: ["<|end|>", "<|user|>"], temperature: 0.6 },
      messages: [
        { role: "user", content: "hi" },
        { role: "assistant", content: "hello" },
      ],
      license: "A\n\nB",
    });
    assert.ok(warnings.some((w) => /future_knob/.test(w)));
    assert.deepEqual(
      textLayersOf(definition).map((l) => l.role),
      ["template", "system", "params", "messages", "license"],
    );
    assert.throws(
      () => definitionFromLayers([{ role: "params", text: '{"temperature":"hot"}' }], "x", "x", () => {}),
      (e: unknown) => e instanceof LlmosError && e.code === "upstream_error",
    );
  });

  test("Go templates: the subset rendered, and what Ollama's library templates use beyond it", () => {
    assert.ok(isSimpleGoTemplate("{{ if .System }}{{ .System }} {{ end }}{{ .Prompt }}{{- .Response -}}"));
    assert.ok(isSimpleGoTemplate("plain text"));
    assert.ok(!isSimpleGoTemplate("{{- range .Messages }}{{ .Content }}{{ end }}"));
    assert.ok(!isSimpleGoTemplate("{{ if .Tools }}x{{ else }}y{{ end }}"));
    assert.ok(!isSimpleGoTemplate("{{ $last := eq (len (slice $.Messages $i)) 1 }}"));
  });
});
