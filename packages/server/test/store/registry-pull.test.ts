import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { DOCKER_MANIFEST, FakeRegistry, OCI_MANIFEST } from "@llmos/test-support";
import { LlmosError } from "../../src/errors.js";
import { ModelStore, type ModelStoreOptions } from "../../src/store/model-store.js";
import type { PullProgress } from "../../src/store/pull/pull.js";
import { PullUrlPolicy } from "../../src/store/pull/url-policy.js";
import { filesUnder, STORIES, STORIES_SHA256, tempDir, TINY, TINY_SHA256 } from "./helpers.js";

function isCode(code: string, text?: RegExp) {
  return (e: unknown) => {
    if (!(e instanceof LlmosError && e.code === code && (text === undefined || text.test(e.message)))) {
      console.error("unexpected error:", e);
      return false;
    }
    return true;
  };
}

const TEMPLATE = "{{ if .System }}{{ .System }} {{ end }}Once upon a time, {{ .Prompt }}";
const FAST = { retryBaseMs: 5 };
/** The registry stand-in answers plain http on 127.0.0.1: allowed as an operator would (LLMOS_PULL_ALLOW_HTTP). */
const LOOPBACK_HTTP = new PullUrlPolicy({ allowHttp: ["127.0.0.1"] });

describe("pull from an OCI registry (Ollama's layout)", () => {
  let registry: FakeRegistry;
  let t: ReturnType<typeof tempDir>;
  let store: ModelStore;
  let published: ReturnType<FakeRegistry["addModel"]>;

  async function open(extra: Partial<ModelStoreOptions["pull"]> = {}, dir = t.dir): Promise<ModelStore> {
    return ModelStore.open({
      root: path.join(dir, "models"),
      pull: { tuning: FAST, policy: LOOPBACK_HTTP, oci: { defaultRegistry: registry.url }, ...extra },
    });
  }

  before(async () => {
    registry = await FakeRegistry.start();
    published = registry.addModel("library/stories", "latest", {
      model: STORIES,
      template: TEMPLATE,
      system: "A short story.",
      params: { temperature: 0, num_predict: 12, stop: ["User:", "\n\n\n"], mirostat_unknown: 3 },
      license: "MIT, for tests",
      extraLayers: [{ mediaType: "application/vnd.example.future-layer", content: Buffer.from("later") }],
    });
    registry.addModel("library/stories", "raw", { model: STORIES });
    registry.addModel("team/tiny", "q8", { model: TINY, manifestType: "oci" });
  });
  after(async () => {
    await registry.close();
  });
  beforeEach(async () => {
    t = tempDir();
    store = await open();
    registry.requests.length = 0;
    registry.dropAfter = undefined;
    registry.corrupt.clear();
  });
  afterEach(async () => {
    await store.dispose();
    t.cleanup();
  });

  test("a library name: token challenge, redirect to storage, layers mapped onto the definition", async () => {
    const events: PullProgress[] = [];
    const record = await store.pull("stories", { onProgress: (e) => events.push(e) });
    assert.equal(record.name, "stories:latest");
    assert.equal(record.digest, `sha256:${STORIES_SHA256}`);
    assert.equal(record.definition.template, TEMPLATE);
    assert.equal(record.definition.system, "A short story.");
    assert.deepEqual(record.definition.parameters, { temperature: 0, num_predict: 12, stop: ["User:", "\n\n\n"] });
    assert.equal(record.definition.license, "MIT, for tests");
    assert.deepEqual(record.origin, {
      registry: registry.host,
      repository: "library/stories",
      tag: "latest",
      manifestDigest: published.manifestDigest,
      mediaType: DOCKER_MANIFEST,
    });
    // The unknown layer and the unknown parameter were skipped, with warnings.
    const warnings = events.filter((e) => e.status.startsWith("warning:")).map((e) => e.status);
    assert.ok(
      warnings.some((w) => /unknown type application\/vnd\.example\.future-layer/.test(w)),
      String(warnings),
    );
    assert.ok(
      warnings.some((w) => /mirostat_unknown/.test(w)),
      String(warnings),
    );
    assert.equal(events[0]!.status, "pulling manifest");
    assert.deepEqual(
      events.slice(-3).map((e) => e.status),
      ["verifying sha256 digest", "writing manifest", "success"],
    );
    // The challenge flow: the first request is refused, a token is fetched, the retry carries it.
    const manifestRequests = registry.requestsTo("registry", /\/manifests\//);
    assert.equal(manifestRequests[0]!.status, 401);
    assert.equal(manifestRequests.at(-1)!.status, 200);
    assert.match(manifestRequests.at(-1)!.authorization ?? "", /^Bearer /);
    assert.match(manifestRequests[0]!.accept ?? "", new RegExp(OCI_MANIFEST.replace(/[.+]/g, "\\$&")));
    assert.match(manifestRequests[0]!.accept ?? "", new RegExp(DOCKER_MANIFEST.replace(/[.+]/g, "\\$&")));
    assert.ok(registry.tokensIssued >= 1);
    // Blobs came from the storage host (another origin), which never saw the token.
    const storage = registry.requestsTo("storage");
    assert.ok(storage.some((r) => r.method === "GET" && r.status === 200));
    assert.ok(storage.every((r) => r.authorization === undefined));
    assert.deepEqual(filesUnder(store.dirs.partial), []);
    // show: where it came from.
    assert.equal((await store.get("stories")).origin?.manifestDigest, published.manifestDigest);
  });

  test("oci:// with a host, an OCI image manifest, by digest; stored blobs are not downloaded again", async () => {
    const ref = `oci://${registry.host}/team/tiny:q8`;
    const record = await store.pull(ref, { insecure: true });
    // The store's default registry is this one, so the name leaves the host out (as for `llama3.2:1b`).
    assert.equal(record.name, "team/tiny:q8");
    assert.equal(record.digest, `sha256:${TINY_SHA256}`);
    assert.equal(record.origin?.mediaType, OCI_MANIFEST);
    const digest = record.origin!.manifestDigest;
    const gets = () => registry.requestsTo("storage", new RegExp(TINY_SHA256)).filter((r) => r.method === "GET").length;
    assert.equal(gets(), 1);
    const byDigest = await store.pull(`oci://${registry.host}/team/tiny@${digest}`, {
      insecure: true,
      name: "tiny-pinned",
    });
    assert.equal(byDigest.digest, `sha256:${TINY_SHA256}`);
    assert.equal(byDigest.origin?.manifestDigest, digest);
    assert.equal(byDigest.origin?.tag, undefined);
    assert.equal(gets(), 1, "the weights were already in the store");
    assert.ok(registry.requestsTo("registry", new RegExp(`/manifests/${digest}`)).length > 0);
    // An OCI-only manifest is not offered to a client that accepts only Docker v2 (content negotiation).
    const onlyDocker = await fetch(`${registry.url}/v2/team/tiny/manifests/q8`, {
      headers: { accept: DOCKER_MANIFEST, authorization: registry.requestsTo("registry").at(-1)!.authorization! },
    });
    assert.equal(onlyDocker.status, 404);
  });

  test("a download cut short resumes where it stopped on the next pull", async () => {
    await store.dispose();
    store = await open({ tuning: { retries: 0, retryBaseMs: 5 } });
    const size = fs.statSync(STORIES).size;
    registry.dropAfter = { bytes: 300_000, times: 1 };
    await assert.rejects(store.pull("stories:raw"), isCode("upstream_error"));
    assert.deepEqual(await store.list(), []);
    assert.ok(filesUnder(store.dirs.partial).length > 0, "the partial download is kept");
    const record = await store.pull("stories:raw");
    assert.equal(record.digest, `sha256:${STORIES_SHA256}`);
    const ranged = registry.requestsTo("storage").filter((r) => r.method === "GET" && r.range !== undefined);
    assert.ok(ranged.length > 0, "the second pull asked for the rest only");
    const from = Number(/bytes=(\d+)-/.exec(ranged.at(-1)!.range!)![1]);
    assert.ok(from >= 200_000 && from < size, `resumed from ${from}`);
    assert.deepEqual(filesUnder(store.dirs.partial), []);
  });

  test("a digest mismatch deletes the download and fails; nothing is registered", async () => {
    registry.corrupt.add(`sha256:${STORIES_SHA256}`);
    await assert.rejects(store.pull("stories:raw"), isCode("upstream_error", /sha256 mismatch/));
    assert.deepEqual(await store.list(), []);
    assert.deepEqual(filesUnder(store.dirs.blobs), []);
    assert.deepEqual(filesUnder(store.dirs.partial), []);
  });

  test("an unknown name or tag is a 404 naming what was asked", async () => {
    await assert.rejects(store.pull("nosuchmodel:1b"), (e: unknown) => {
      assert.ok(e instanceof LlmosError);
      assert.equal(e.code, "not_found");
      assert.match(e.message, /library\/nosuchmodel:1b/);
      assert.match(e.message, /no such repository/);
      return true;
    });
    await assert.rejects(store.pull("stories:99b"), isCode("not_found", /library\/stories:99b.*no such tag/));
    assert.deepEqual(await store.list(), []);
  });

  test("plain http is refused for hosts the policy does not allow, before any request", async () => {
    const before = registry.requests.length;
    await assert.rejects(
      store.pull("oci://registry.example.invalid/team/model:1", { insecure: true }),
      isCode("invalid_reference", /plain http/),
    );
    const mirror = await open({ oci: { defaultRegistry: "http://mirror.example.invalid:5000" } }, tempDir().dir);
    try {
      await assert.rejects(mirror.pull("llama3.2:1b"), isCode("invalid_reference", /plain http/));
    } finally {
      await mirror.dispose();
    }
    assert.equal(registry.requests.length, before);
  });

  test("a multimodal projector is stored with the model (not used yet) and kept by gc", async () => {
    registry.addModel("library/vision", "latest", { model: STORIES, projector: TINY });
    const events: PullProgress[] = [];
    const record = await store.pull("vision", { onProgress: (e) => events.push(e) });
    assert.deepEqual(
      record.projectors.map((p) => p.digest),
      [`sha256:${TINY_SHA256}`],
    );
    assert.ok(events.some((e) => /projector.*not use it yet/.test(e.status)));
    await store.gc();
    assert.ok(await store.hasBlob(`sha256:${TINY_SHA256}`));
    assert.equal(record.size, fs.statSync(STORIES).size + fs.statSync(TINY).size);
  });
});

describe("push to an OCI registry", () => {
  let registry: FakeRegistry;
  let t: ReturnType<typeof tempDir>;

  before(async () => {
    registry = await FakeRegistry.start();
    t = tempDir();
  });
  after(async () => {
    await registry.close();
    t.cleanup();
  });

  test("push a created model, then pull it back: the same bytes and definition", async () => {
    const credentials = { byHost: { [registry.host]: { username: "pusher", password: "secret-password" } } };
    const source = await ModelStore.open({
      root: path.join(t.dir, "a"),
      pull: { tuning: FAST, policy: LOOPBACK_HTTP, oci: { credentials, uploadChunkBytes: 256 * 1024 } },
    });
    const target = `oci://${registry.host}/team/teller:v1`;
    try {
      await source.importFile(STORIES, "stories");
      await source.create(
        "teller",
        `FROM stories\nTEMPLATE """${TEMPLATE}"""\nSYSTEM Tell a story.\nPARAMETER temperature 0\nPARAMETER stop "The end"\nMESSAGE user Hi\nLICENSE MIT`,
      );
      const events: PullProgress[] = [];
      const pushed = await source.push("teller", target, { insecure: true, onProgress: (e) => events.push(e) });
      assert.equal(pushed.reference, `${registry.host}/team/teller:v1`);
      const stored = registry.manifest("team/teller", "v1")!;
      assert.equal(stored.digest, pushed.manifestDigest);
      assert.equal(stored.mediaType, DOCKER_MANIFEST);
      // Chunked upload: several PATCHes for the 1 MB weights, each with a Content-Range.
      assert.ok(registry.requestsTo("registry", /\/blobs\/uploads\//).filter((r) => r.method === "PATCH").length > 2);
      assert.ok(events.some((e) => e.status === `pushing ${STORIES_SHA256.slice(0, 12)}` && e.completed === e.total));
      assert.equal(events.at(-1)!.status, "success");

      // A second push sends no blob again (HEAD says the registry has them).
      registry.requests.length = 0;
      await source.push("teller", target, { insecure: true });
      assert.equal(registry.requestsTo("registry", /\/blobs\/uploads\//).length, 0);

      const back = await ModelStore.open({
        root: path.join(t.dir, "b"),
        pull: { tuning: FAST, policy: LOOPBACK_HTTP },
      });
      try {
        const record = await back.pull(target, { insecure: true, name: "teller-again" });
        const original = await source.get("teller");
        assert.equal(record.digest, original.digest);
        assert.ok(fs.readFileSync(record.modelPath).equals(fs.readFileSync(STORIES)), "byte-identical weights");
        const { from: _a, ...want } = original.definition;
        const { from: _b, ...got } = record.definition;
        assert.deepEqual(got, want);
        assert.equal(record.origin?.manifestDigest, pushed.manifestDigest);
      } finally {
        await back.dispose();
      }
    } finally {
      await source.dispose();
    }
  });

  test("push without credentials is refused; Docker's config.json credentials work", async () => {
    const anonymous = await ModelStore.open({
      root: path.join(t.dir, "c"),
      pull: { tuning: FAST, policy: LOOPBACK_HTTP },
    });
    try {
      await anonymous.importFile(STORIES, "stories");
      await assert.rejects(
        anonymous.push("stories", `${registry.host}/team/nope:v1`, { insecure: true }),
        isCode("forbidden", /LLMOS_OCI_AUTH|docker login/),
      );
      await assert.rejects(anonymous.push("missing", `${registry.host}/team/nope:v1`), isCode("model_not_found"));
      assert.equal(registry.manifest("team/nope", "v1"), undefined);
    } finally {
      await anonymous.dispose();
    }
    const dockerConfigPath = path.join(t.dir, "docker-config.json");
    fs.writeFileSync(
      dockerConfigPath,
      JSON.stringify({
        auths: { [`http://${registry.host}`]: { auth: Buffer.from("pusher:secret-password").toString("base64") } },
      }),
    );
    const withDocker = await ModelStore.open({
      root: path.join(t.dir, "d"),
      pull: { tuning: FAST, policy: LOOPBACK_HTTP, oci: { credentials: { dockerConfigPath } } },
    });
    try {
      await withDocker.importFile(STORIES, "stories");
      const pushed = await withDocker.push("stories", `${registry.host}/team/from-docker:v1`, { insecure: true });
      assert.equal(registry.manifest("team/from-docker", "v1")?.digest, pushed.manifestDigest);
    } finally {
      await withDocker.dispose();
    }
  });
});

describe("a hostile registry", () => {
  let t: ReturnType<typeof tempDir>;
  let store: ModelStore;
  let inside: http.Server;
  let insideHits = 0;
  let insideUrl: string;

  before(async () => {
    t = tempDir();
    store = await ModelStore.open({ root: path.join(t.dir, "models"), pull: { tuning: FAST, policy: LOOPBACK_HTTP } });
    // A service on the daemon's own machine that a remote registry must not be able to make llmos call.
    inside = http.createServer((_req, res) => {
      insideHits++;
      res.end("internal");
    });
    await new Promise<void>((r) => inside.listen(0, "127.0.0.1", r));
    insideUrl = `http://127.0.0.1:${(inside.address() as AddressInfo).port}`;
  });
  after(async () => {
    await store.dispose();
    inside.closeAllConnections();
    await new Promise<void>((r) => inside.close(() => r()));
    t.cleanup();
  });

  /** A remote registry (`https://evil.example`) played by a fetch function: the requests never leave the process. */
  function evilFetch(answer: (url: URL) => Response): typeof fetch {
    return (async (input: string | URL | Request) => {
      const url = new URL(input instanceof Request ? input.url : input.toString());
      if (url.hostname !== "evil.example") return fetch(input);
      return answer(url);
    }) as typeof fetch;
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: DOCKER_MANIFEST,
      config: {
        mediaType: "application/vnd.docker.container.image.v1+json",
        digest: `sha256:${"1".repeat(64)}`,
        size: 2,
      },
      layers: [{ mediaType: "application/vnd.ollama.image.model", digest: `sha256:${STORIES_SHA256}`, size: 10 }],
    }),
  );

  test("a blob redirect or a token endpoint on the daemon's loopback is refused; nothing reaches it", async () => {
    const redirecting = evilFetch((url) =>
      url.pathname.includes("/manifests/")
        ? new Response(manifest, { headers: { "content-type": DOCKER_MANIFEST } })
        : new Response(null, { status: 307, headers: { location: `${insideUrl}/admin` } }),
    );
    await assert.rejects(
      store.pull("evil.example/team/model:1", { fetch: redirecting }),
      isCode("upstream_error", /loopback/),
    );
    const challenging = evilFetch(
      () =>
        new Response("{}", {
          status: 401,
          headers: { "www-authenticate": `Bearer realm="${insideUrl}/token",service="x"` },
        }),
    );
    await assert.rejects(store.pull("evil.example/team/model:1", { fetch: challenging }), isCode("upstream_error"));
    assert.equal(insideHits, 0);
    assert.deepEqual(await store.list(), []);
  });

  test("a registry's error text is never echoed in the error", async () => {
    const leaky = evilFetch(
      () =>
        new Response(JSON.stringify({ errors: [{ code: "DENIED", message: "SECRET-INTERNAL-DETAIL at 10.0.0.7" }] }), {
          status: 403,
          headers: { "content-type": "application/json" },
        }),
    );
    await assert.rejects(store.pull("evil.example/team/model:1", { fetch: leaky }), (e: unknown) => {
      assert.ok(e instanceof LlmosError);
      assert.equal(e.code, "forbidden");
      assert.match(e.message, /DENIED/);
      assert.doesNotMatch(JSON.stringify({ m: e.message, d: e.details }), /SECRET|10\.0\.0\.7/);
      return true;
    });
  });
});
