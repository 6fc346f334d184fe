import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { LlmosError } from "../../src/errors.js";
import { ModelStore } from "../../src/store/model-store.js";
import type { PullProgress } from "../../src/store/pull/pull.js";
import { PullUrlPolicy } from "../../src/store/pull/url-policy.js";
import { FakeHub } from "../support/fake-hub.js";
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

const FAST = { retryBaseMs: 5 };
/** The fake Hub and CDN answer plain http on 127.0.0.1: allowed the way an operator would (LLMOS_PULL_ALLOW_HTTP). */
const LOOPBACK_HTTP = new PullUrlPolicy({ allowHttp: ["127.0.0.1"] });

describe("pull from a Hub", () => {
  let hub: FakeHub;
  let t: ReturnType<typeof tempDir>;
  let store: ModelStore;

  before(async () => {
    hub = await FakeHub.start({
      "test/stories-GGUF": {
        files: {
          "stories260K-Q4_K_M.gguf": STORIES,
          "stories260K-Q8_0.gguf": TINY,
          "extra/tiny-F16.gguf": TINY,
          "README.md": Buffer.from("# readme\n"),
        },
        revisions: ["main", "v1"],
      },
      "test/ambiguous": { files: { "a-Q4_0.gguf": STORIES, "b-Q4_0.gguf": TINY } },
      "test/gated": { files: { "model.gguf": STORIES }, gated: true },
      "test/junk": { files: { "model.gguf": Buffer.from("this is not a GGUF file at all") } },
    });
  });
  after(async () => {
    await hub.close();
  });
  beforeEach(async () => {
    t = tempDir();
    store = await ModelStore.open({
      root: path.join(t.dir, "models"),
      pull: { endpoint: hub.url, tuning: FAST, policy: LOOPBACK_HTTP },
    });
    hub.requests.length = 0;
    hub.failures.length = 0;
    hub.dropAfter = undefined;
    hub.corrupt.clear();
    hub.ignoreRange = false;
    hub.chunkDelayMs = 0;
    hub.chunkSize = 64 * 1024;
  });
  afterEach(async () => {
    await store.dispose();
    t.cleanup();
  });

  /** Nothing half-done is left behind after a failed pull. */
  async function assertNothingRegistered(): Promise<void> {
    assert.deepEqual(await store.list(), []);
    assert.deepEqual(filesUnder(store.dirs.blobs), []);
    assert.deepEqual(filesUnder(store.dirs.manifests), []);
    assert.deepEqual(filesUnder(store.dirs.tmp), []);
  }

  test("default pick (Q4_K_M), Ollama-shaped progress, sha256 checked, token kept off the CDN", async () => {
    const events: PullProgress[] = [];
    const record = await store.pull("hf.co/test/stories-GGUF", {
      hfToken: "secret",
      onProgress: (e) => events.push(e),
    });
    assert.equal(record.name, "hf.co/test/stories-gguf:Q4_K_M");
    assert.equal(record.digest, `sha256:${STORIES_SHA256}`);
    assert.equal(record.summary.architecture, "llama");
    const statuses = events.map((e) => e.status);
    assert.equal(statuses[0], "pulling manifest");
    assert.ok(statuses.includes(`pulling ${STORIES_SHA256.slice(0, 12)}`));
    assert.deepEqual(statuses.slice(-3), ["verifying sha256 digest", "writing manifest", "success"]);
    const last = events.filter((e) => e.status.startsWith("pulling 2")).pop()!;
    assert.equal(last.completed, fs.statSync(STORIES).size);
    assert.equal(last.total, fs.statSync(STORIES).size);
    assert.equal(last.digest, `sha256:${STORIES_SHA256}`);
    // Hub requests carry the token; the CDN (another origin reached by redirect) never sees it.
    assert.ok(hub.requestsTo("hub").every((r) => r.authorization === "Bearer secret"));
    assert.ok(hub.requestsTo("cdn").length > 0);
    assert.ok(hub.requestsTo("cdn").every((r) => r.authorization === undefined));
    assert.ok(hub.requestsTo("hub", /\/api\/models\/test\/stories-GGUF\/tree\/main/).length === 1);
    assert.deepEqual(filesUnder(store.dirs.partial), []);
  });

  test("by quant tag, by file path, hf:// and huggingface.co forms, revision", async () => {
    assert.equal((await store.pull("hf.co/test/stories-GGUF:q8_0")).digest, `sha256:${TINY_SHA256}`);
    const byPath = await store.pull("hf://test/stories-GGUF/extra/tiny-F16.gguf", { name: "tiny-nested" });
    assert.equal(byPath.name, "tiny-nested:latest");
    assert.equal(byPath.digest, `sha256:${TINY_SHA256}`);
    const v1 = await store.pull("huggingface.co/test/stories-GGUF:Q4_K_M", { revision: "v1" });
    assert.equal(v1.digest, `sha256:${STORIES_SHA256}`);
    assert.ok(hub.requestsTo("hub", /\/tree\/v1$/).length === 1);
    // The tiny blob came once: the second pull reused the stored blob without downloading.
    assert.equal(hub.requestsTo("cdn", new RegExp(TINY_SHA256)).filter((r) => r.method === "GET").length, 1);
  });

  test("clear errors for missing/ambiguous quant, missing repo/file/revision, gated repos", async () => {
    await assert.rejects(
      store.pull("hf.co/test/stories-GGUF:Q3_K_M"),
      isCode("not_found", /Q3_K_M.*stories260K-Q4_K_M\.gguf/),
    );
    await assert.rejects(store.pull("hf.co/test/ambiguous:Q4_0"), isCode("invalid_reference", /several files/));
    await assert.rejects(store.pull("hf.co/test/nope"), isCode("not_found", /test\/nope/));
    await assert.rejects(store.pull("hf.co/test/stories-GGUF/missing.gguf"), isCode("not_found", /missing\.gguf/));
    await assert.rejects(store.pull("hf.co/test/stories-GGUF", { revision: "v9" }), isCode("not_found", /v9/));
    await assert.rejects(store.pull("hf.co/test/gated"), isCode("forbidden", /gated.*HF_TOKEN/));
    await assert.rejects(store.pull("hf.co/test/gated", { hfToken: "wrong" }), isCode("forbidden", /no access/));
    await assertNothingRegistered();
    const ok = await store.pull("hf.co/test/gated", { hfToken: hub.token });
    assert.equal(ok.digest, `sha256:${STORIES_SHA256}`);
  });

  test("a file that is not GGUF is never registered", async () => {
    await assert.rejects(store.pull("hf.co/test/junk"), isCode("invalid_model_file"));
    await assertNothingRegistered();
    assert.deepEqual(filesUnder(store.dirs.partial), []);
  });

  test("a body that does not match its hash is rejected and deleted", async () => {
    hub.corrupt.add(STORIES_SHA256);
    await assert.rejects(store.pull("hf.co/test/stories-GGUF"), isCode("upstream_error", /sha256 mismatch/));
    await assertNothingRegistered();
    assert.deepEqual(filesUnder(store.dirs.partial), []);
  });

  test("5xx answers are retried, then succeed; endless 5xx gives up with upstream_error", async () => {
    hub.failures.push({ match: /\/resolve\//, status: 503, times: 2 });
    hub.failures.push({ match: /^\/cdn\//, status: 500, times: 1, method: "GET" });
    const record = await store.pull("hf.co/test/stories-GGUF");
    assert.equal(record.digest, `sha256:${STORIES_SHA256}`);
    assert.equal(hub.requestsTo("hub", /\/resolve\//).filter((r) => r.status === 503).length, 2);

    await store.remove(record.name);
    hub.failures.push({ match: /\/resolve\//, status: 502, times: 1000 });
    await assert.rejects(
      store.pull("hf.co/test/stories-GGUF", { tuning: { retries: 2 } }),
      isCode("upstream_error", /502.*gave up/),
    );
    await assertNothingRegistered();
  });

  test("a dropped connection resumes with Range", async () => {
    hub.dropAfter = { bytes: 300_000, times: 1 };
    const record = await store.pull("hf.co/test/stories-GGUF");
    assert.equal(record.digest, `sha256:${STORIES_SHA256}`);
    const gets = hub.requestsTo("cdn").filter((r) => r.method === "GET");
    assert.equal(gets.length, 2);
    assert.equal(gets[0]!.range, undefined);
    const resumed = /^bytes=(\d+)-$/.exec(gets[1]!.range ?? "");
    assert.ok(resumed, `second request asks for a range: ${gets[1]!.range}`);
    assert.ok(Number(resumed[1]) > 0 && Number(resumed[1]) <= 300_000);
    assert.equal(gets[1]!.status, 206);
  });

  test("a server that ignores Range makes the download start over, still verified", async () => {
    hub.dropAfter = { bytes: 200_000, times: 1 };
    hub.ignoreRange = true;
    const record = await store.pull("hf.co/test/stories-GGUF");
    assert.equal(record.digest, `sha256:${STORIES_SHA256}`);
    const gets = hub.requestsTo("cdn").filter((r) => r.method === "GET");
    assert.equal(gets.length, 2);
    assert.ok(gets[1]!.range?.startsWith("bytes="));
    assert.equal(gets[1]!.status, 200);
  });

  test("large files come in parallel byte ranges (and a dropped range is retried)", async () => {
    hub.dropAfter = { bytes: 100_000, times: 1 };
    const record = await store.pull("hf.co/test/stories-GGUF", {
      tuning: { parallelThreshold: 256 * 1024, connections: 4 },
    });
    assert.equal(record.digest, `sha256:${STORIES_SHA256}`);
    const size = fs.statSync(STORIES).size;
    const gets = hub.requestsTo("cdn").filter((r) => r.method === "GET");
    const starts = new Set(gets.map((r) => Number(/^bytes=(\d+)-/.exec(r.range ?? "")?.[1])));
    const part = Math.ceil(size / 4);
    for (const s of [0, part, 2 * part, 3 * part]) assert.ok(starts.has(s), `a range starts at ${s}`);
    assert.ok(gets.every((r) => r.range !== undefined && (r.status === 206 || r.status === 0)));
    assert.ok(gets.length >= 5, "the dropped range was requested again");
  });

  test("two concurrent pulls of the same file share one download", async () => {
    hub.chunkDelayMs = 5;
    hub.chunkSize = 32 * 1024;
    const a: PullProgress[] = [];
    const b: PullProgress[] = [];
    const [ra, rb] = await Promise.all([
      store.pull("hf.co/test/stories-GGUF", { name: "a", onProgress: (e) => a.push(e) }),
      store.pull("hf.co/test/stories-GGUF:Q4_K_M", { name: "b", onProgress: (e) => b.push(e) }),
    ]);
    assert.equal(ra.digest, rb.digest);
    assert.equal(hub.requestsTo("cdn").filter((r) => r.method === "GET").length, 1);
    assert.ok(
      b.some((e) => e.status.startsWith("pulling 2") && (e.completed ?? 0) > 0),
      "both see progress",
    );
    assert.equal(a.at(-1)?.status, "success");
    assert.equal(b.at(-1)?.status, "success");
    assert.deepEqual(
      (await store.list()).map((r) => r.name),
      ["a:latest", "b:latest"],
    );
  });

  test("abort keeps the partial file; a new process resumes it with Range", async () => {
    hub.chunkDelayMs = 10;
    hub.chunkSize = 16 * 1024;
    const controller = new AbortController();
    await assert.rejects(
      store.pull("hf.co/test/stories-GGUF", {
        signal: controller.signal,
        onProgress: (e) => {
          if ((e.completed ?? 0) > 200_000) controller.abort();
        },
      }),
      isCode("client_closed"),
    );
    const partials = filesUnder(store.dirs.partial);
    assert.deepEqual(partials, [`sha256-${STORIES_SHA256}.json`, `sha256-${STORIES_SHA256}.partial`]);
    const have = fs.statSync(path.join(store.dirs.partial, `sha256-${STORIES_SHA256}.partial`)).size;
    assert.ok(have > 0);
    await assertNothingRegistered();
    // "Restart": a new store object on the same folder.
    await store.dispose();
    hub.chunkDelayMs = 0;
    hub.requests.length = 0;
    store = await ModelStore.open({
      root: store.root,
      pull: { endpoint: hub.url, tuning: FAST, policy: LOOPBACK_HTTP },
    });
    const record = await store.pull("hf.co/test/stories-GGUF");
    assert.equal(record.digest, `sha256:${STORIES_SHA256}`);
    const gets = hub.requestsTo("cdn").filter((r) => r.method === "GET");
    assert.equal(gets.length, 1);
    assert.equal(gets[0]!.range, `bytes=${have}-`);
    assert.equal(gets[0]!.status, 206);
    assert.deepEqual(filesUnder(store.dirs.partial), []);
  });

  test("parallel ranges resume after a restart from where each range stopped", async () => {
    hub.chunkDelayMs = 10;
    hub.chunkSize = 16 * 1024;
    const tuning = { parallelThreshold: 256 * 1024, connections: 4 };
    const controller = new AbortController();
    await assert.rejects(
      store.pull("hf.co/test/stories-GGUF", {
        tuning,
        signal: controller.signal,
        onProgress: (e) => {
          if ((e.completed ?? 0) > 500_000) controller.abort();
        },
      }),
      isCode("client_closed"),
    );
    const sidecar = JSON.parse(fs.readFileSync(path.join(store.dirs.partial, `sha256-${STORIES_SHA256}.json`), "utf8"));
    assert.equal(sidecar.mode, "parallel");
    await store.dispose();
    hub.chunkDelayMs = 0;
    hub.requests.length = 0;
    store = await ModelStore.open({
      root: store.root,
      pull: { endpoint: hub.url, tuning: FAST, policy: LOOPBACK_HTTP },
    });
    const record = await store.pull("hf.co/test/stories-GGUF", { tuning });
    assert.equal(record.digest, `sha256:${STORIES_SHA256}`);
    const size = fs.statSync(STORIES).size;
    const requested = hub
      .requestsTo("cdn")
      .filter((r) => r.method === "GET")
      .map((r) => /^bytes=(\d+)-(\d+)$/.exec(r.range ?? ""))
      .map((m) => (assert.ok(m, "every request is a closed range"), Number(m[2]) - Number(m[1]) + 1));
    const total = requested.reduce((a, b) => a + b, 0);
    assert.ok(total < size - 200_000, `resumed download fetched ${total} of ${size} bytes`);
  });

  test("one of two pulls sharing a download can cancel; the other completes", async () => {
    hub.chunkDelayMs = 5;
    hub.chunkSize = 32 * 1024;
    const controller = new AbortController();
    const first = store.pull("hf.co/test/stories-GGUF", { name: "keeps" });
    const second = store.pull("hf.co/test/stories-GGUF", {
      name: "cancels",
      signal: controller.signal,
      onProgress: (e) => {
        if ((e.completed ?? 0) > 100_000) controller.abort();
      },
    });
    await assert.rejects(second, isCode("client_closed"));
    const record = await first;
    assert.equal(record.digest, `sha256:${STORIES_SHA256}`);
    assert.deepEqual(
      (await store.list()).map((r) => r.name),
      ["keeps:latest"],
    );
    assert.equal(hub.requestsTo("cdn").filter((r) => r.method === "GET").length, 1);
  });

  test("a pull started as another of the same file is cancelled completes, resuming its bytes", async () => {
    hub.chunkDelayMs = 10;
    hub.chunkSize = 16 * 1024;
    const controller = new AbortController();
    let second: Promise<unknown> | undefined;
    const cancelled = store.pull("hf.co/test/stories-GGUF", {
      signal: controller.signal,
      onProgress: (e) => {
        if ((e.completed ?? 0) > 150_000 && !second) {
          controller.abort();
          hub.chunkDelayMs = 0;
          second = store.pull("hf.co/test/stories-GGUF", { name: "second" });
        }
      },
    });
    await assert.rejects(cancelled, isCode("client_closed"));
    const record = (await second) as { digest: string };
    assert.equal(record.digest, `sha256:${STORIES_SHA256}`);
    const gets = hub.requestsTo("cdn").filter((r) => r.method === "GET");
    assert.equal(gets.length, 2);
    assert.match(gets[1]!.range ?? "", /^bytes=[1-9]\d*-$/, "the second download resumed the first one's bytes");
  });

  test("not enough disk space fails before downloading", async () => {
    await store.dispose();
    store = await ModelStore.open({
      root: path.join(t.dir, "models"),
      reserveBytes: Number.MAX_SAFE_INTEGER,
      pull: { endpoint: hub.url, tuning: FAST, policy: LOOPBACK_HTTP },
    });
    await assert.rejects(store.pull("hf.co/test/stories-GGUF"), isCode("insufficient_storage", /disk space/));
    assert.equal(hub.requestsTo("cdn").filter((r) => r.method === "GET").length, 0);
    await assertNothingRegistered();
  });

  test("pullStream yields the same events as an async iterator and returns the record", async () => {
    const stream = store.pullStream("hf.co/test/stories-GGUF:Q8_0");
    const statuses: string[] = [];
    let next = await stream.next();
    while (!next.done) {
      statuses.push(next.value.status);
      next = await stream.next();
    }
    assert.equal(next.value.digest, `sha256:${TINY_SHA256}`);
    assert.equal(statuses[0], "pulling manifest");
    assert.equal(statuses.at(-1), "success");
    // Leaving the loop early cancels the pull and registers nothing.
    hub.chunkDelayMs = 10;
    hub.chunkSize = 16 * 1024;
    for await (const e of store.pullStream("hf.co/test/stories-GGUF", { name: "left" })) {
      if ((e.completed ?? 0) > 100_000) break;
    }
    await assert.rejects(store.get("left"), isCode("model_not_found"));
  });

  test("plain URL pull (http only to LLMOS_PULL_ALLOW_HTTP hosts)", async () => {
    const url = hub.addPlainFile("Stories260K.gguf", STORIES);
    const record = await store.pull(url);
    assert.equal(record.name, "stories260k:latest");
    assert.equal(record.digest, `sha256:${STORIES_SHA256}`);
    await assert.rejects(store.pull("http://example.com/x.gguf"), isCode("invalid_reference", /LLMOS_PULL_ALLOW_HTTP/));
    await assert.rejects(store.pull(`${hub.cdnUrl}/files/missing.gguf`), isCode("not_found", /missing\.gguf/));
  });
});
