import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { LlmosError } from "../../src/errors.js";
import { ModelStore } from "../../src/store/model-store.js";
import { toModelInfo, toModelSummary } from "../../src/store/record.js";
import { filesUnder, STORIES, STORIES_SHA256, tempDir, TINY, TINY_SHA256 } from "./helpers.js";

function isCode(code: string, text?: RegExp) {
  return (e: unknown) => e instanceof LlmosError && e.code === code && (text === undefined || text.test(e.message));
}

describe("ModelStore basics", () => {
  let t: ReturnType<typeof tempDir>;
  let store: ModelStore;
  before(async () => {
    t = tempDir();
    store = await ModelStore.open({ root: path.join(t.dir, "models") });
  });
  after(async () => {
    await store.dispose();
    t.cleanup();
  });

  test("import registers a model whose blob is the file's sha256", async () => {
    const record = await store.importFile(STORIES, "stories");
    assert.equal(record.name, "stories:latest");
    assert.equal(record.digest, `sha256:${STORIES_SHA256}`);
    assert.equal(record.size, fs.statSync(STORIES).size);
    assert.equal(record.modelPath, path.join(store.root, "blobs", `sha256-${STORIES_SHA256}`));
    assert.equal(fs.readFileSync(record.modelPath).equals(fs.readFileSync(STORIES)), true);
    assert.equal(record.summary.architecture, "llama");
    assert.equal(record.summary.blockCount, 5);
    assert.ok(fs.existsSync(path.join(store.root, "manifests", "stories", "latest.json")));
    assert.deepEqual(filesUnder(store.dirs.tmp), []);
  });

  test("a manifest changed on disk by another process is read again (the in-memory copy is checked by stat)", async () => {
    await store.importFile(STORIES, "edited");
    assert.equal((await store.get("edited")).definition.system, undefined);
    const file = path.join(store.root, "manifests", "edited", "latest.json");
    const manifest = JSON.parse(fs.readFileSync(file, "utf8"));
    manifest.definition = { ...manifest.definition, system: "You are terse." };
    fs.writeFileSync(file + ".new", JSON.stringify(manifest));
    fs.renameSync(file + ".new", file); // a new inode, as an atomic writer makes
    assert.equal((await store.get("edited")).definition.system, "You are terse.");
    fs.unlinkSync(file);
    await assert.rejects(store.get("edited"), isCode("model_not_found"));
  });

  test("get accepts the name with or without :latest; unknown names are model_not_found", async () => {
    assert.equal((await store.get("stories")).digest, (await store.get("stories:latest")).digest);
    await assert.rejects(store.get("nope:v1"), isCode("model_not_found", /"nope:v1"/));
    await assert.rejects(store.get("bad name"), isCode("invalid_model_name"));
    assert.equal((await store.get("STORIES")).name, "stories:latest");
  });

  test("same content is stored once; list shows every name", async () => {
    await store.importFile(STORIES, "me/stories:v2");
    await store.importFile(TINY, "tiny");
    assert.deepEqual((await store.blobs.list()).sort(), [`sha256:${STORIES_SHA256}`, `sha256:${TINY_SHA256}`].sort());
    const names = (await store.list()).map((r) => r.name);
    assert.deepEqual(names, ["me/stories:v2", "stories:latest", "tiny:latest"]);
  });

  test("wire mapping: summary and info", async () => {
    const record = await store.get("stories");
    const summary = toModelSummary(record);
    assert.equal(summary.name, "stories:latest");
    assert.equal(summary.details.format, "gguf");
    assert.equal(summary.details.architecture, "llama");
    assert.equal(summary.details.blockCount, 5);
    assert.equal(summary.details.headCount, 8);
    assert.equal(summary.details.headCountKv, 4);
    assert.equal(summary.details.vocabSize, 512);
    assert.equal(summary.details.hasChatTemplate, false);
    const info = toModelInfo(record, { metadata: await store.metadata("stories") });
    assert.deepEqual(info.parameters, {});
    assert.match(info.modelfile ?? "", new RegExp(`^FROM sha256:${STORIES_SHA256}\\n`));
    assert.equal(info.metadata?.["general.architecture"], "llama");
  });

  test("copy shares blobs; remove keeps blobs other models use and deletes the rest", async () => {
    const copy = await store.copy("tiny", "tiny-copy:x");
    assert.equal(copy.name, "tiny-copy:x");
    assert.equal(copy.digest, `sha256:${TINY_SHA256}`);
    await assert.rejects(store.copy("missing", "x"), isCode("model_not_found", /"missing:latest"/));

    let result = await store.remove("tiny");
    assert.equal(result.freedBytes, 0, "tiny-copy still uses the blob");
    assert.ok(await store.hasBlob(`sha256:${TINY_SHA256}`));
    result = await store.remove("tiny-copy:x");
    assert.equal(result.freedBytes, fs.statSync(TINY).size);
    assert.equal(await store.hasBlob(`sha256:${TINY_SHA256}`), false);
    await assert.rejects(store.remove("tiny"), isCode("model_not_found"));
    // Empty name folders are removed with the last tag.
    assert.equal(fs.existsSync(path.join(store.root, "manifests", "tiny-copy")), false);
  });

  test("du reports per-model and shared bytes", async () => {
    const du = await store.du();
    const size = fs.statSync(STORIES).size;
    assert.equal(du.blobBytes, size);
    assert.equal(du.sharedBytes, size);
    assert.equal(du.unreferencedBytes, 0);
    assert.deepEqual(
      du.models.map((m) => [m.name, m.bytes, m.uniqueBytes]),
      [
        ["me/stories:v2", size, 0],
        ["stories:latest", size, 0],
      ],
    );
  });
});

describe("ModelStore rejects bad input without registering anything", () => {
  test("a file that is not GGUF, a truncated GGUF, a missing file", async () => {
    const t = tempDir();
    const store = await ModelStore.open({ root: path.join(t.dir, "models") });
    try {
      const notGguf = path.join(t.dir, "not.gguf");
      fs.writeFileSync(notGguf, "hello world, definitely not a model");
      await assert.rejects(store.importFile(notGguf, "bad"), isCode("invalid_model_file", /not a valid GGUF/));
      const truncated = path.join(t.dir, "truncated.gguf");
      fs.writeFileSync(truncated, fs.readFileSync(STORIES).subarray(0, 600_000));
      await assert.rejects(store.importFile(truncated, "bad"), isCode("invalid_model_file"));
      await assert.rejects(store.importFile(path.join(t.dir, "missing.gguf"), "bad"), isCode("not_found"));
      await assert.rejects(store.importFile(STORIES, "../escape"), isCode("invalid_model_name"));
      assert.deepEqual(await store.list(), []);
      assert.deepEqual(filesUnder(store.dirs.blobs), []);
      assert.deepEqual(filesUnder(store.dirs.tmp), []);
      assert.deepEqual(filesUnder(store.dirs.manifests), []);
    } finally {
      await store.dispose();
      t.cleanup();
    }
  });

  test("open deletes temp files a crash left behind", async () => {
    const t = tempDir();
    const root = path.join(t.dir, "models");
    try {
      let store = await ModelStore.open({ root });
      fs.writeFileSync(path.join(store.dirs.tmp, "blob-123-abc"), "half a blob");
      await store.dispose();
      store = await ModelStore.open({ root });
      assert.deepEqual(filesUnder(store.dirs.tmp), []);
      await store.dispose();
      await assert.rejects(store.list(), isCode("unavailable"));
    } finally {
      t.cleanup();
    }
  });
});

describe("ModelStore leases, gc and verify", () => {
  test("a leased blob survives remove + gc and is collected after release", async () => {
    const t = tempDir();
    const store = await ModelStore.open({ root: path.join(t.dir, "models") });
    try {
      await store.importFile(TINY, "tiny");
      const lease = await store.acquire("tiny");
      assert.equal(lease.modelPath, store.blobPath(`sha256:${TINY_SHA256}`));
      assert.deepEqual(lease.adapterPaths, []);
      assert.equal(store.leaseCount(`sha256:${TINY_SHA256}`), 1);
      const removed = await store.remove("tiny");
      assert.equal(removed.freedBytes, 0);
      assert.ok(fs.existsSync(lease.modelPath), "leased blob kept");
      const gc = await store.gc();
      assert.deepEqual(gc.kept, [`sha256:${TINY_SHA256}`]);
      lease.release();
      lease.release(); // idempotent
      await store.dispose(); // waits for the gc the release started
      assert.equal(fs.existsSync(lease.modelPath), false, "collected after release");
      await assert.rejects(store.acquire("tiny"), isCode("unavailable"));
    } finally {
      t.cleanup();
    }
  });

  test("gc deletes downloads abandoned in partial/ (file and sidecar), and keeps recent ones", async () => {
    const t = tempDir();
    const store = await ModelStore.open({ root: path.join(t.dir, "models"), partialMaxAgeMs: 60 * 60 * 1000 });
    try {
      const put = (key: string, bytes: number, ageMs: number) => {
        for (const [ext, size] of [
          [".partial", bytes],
          [".json", 20],
        ] as const) {
          const f = path.join(store.dirs.partial, key + ext);
          fs.writeFileSync(f, Buffer.alloc(size));
          const when = new Date(Date.now() - ageMs);
          fs.utimesSync(f, when, when);
        }
      };
      put("sha256-old", 1000, 2 * 60 * 60 * 1000);
      put("url-fresh", 500, 60 * 1000);
      const gc = await store.gc();
      assert.deepEqual(gc.partialsRemoved, ["sha256-old"]);
      assert.equal(gc.freedBytes, 1020);
      assert.deepEqual(fs.readdirSync(store.dirs.partial).sort(), ["url-fresh.json", "url-fresh.partial"]);
      assert.equal((await store.du()).partialBytes, 520);
    } finally {
      await store.dispose();
      t.cleanup();
    }
  });

  test("acquire of an unknown model fails with model_not_found", async () => {
    const t = tempDir();
    const store = await ModelStore.open({ root: path.join(t.dir, "models") });
    try {
      await assert.rejects(store.acquire("ghost"), isCode("model_not_found", /ghost:latest/));
    } finally {
      await store.dispose();
      t.cleanup();
    }
  });

  test("verify quarantines a corrupt blob and names the models that used it", async () => {
    const t = tempDir();
    const store = await ModelStore.open({ root: path.join(t.dir, "models") });
    try {
      await store.importFile(STORIES, "stories");
      await store.importFile(TINY, "tiny");
      const clean = await store.verify();
      assert.deepEqual(clean, { checked: 2, corrupt: [] });
      // Flip one byte inside the tensor data of tiny's blob.
      const blob = store.blobPath(`sha256:${TINY_SHA256}`);
      const fd = fs.openSync(blob, "r+");
      fs.writeSync(fd, Buffer.from([0xff]), 0, 1, fs.statSync(blob).size - 10);
      fs.closeSync(fd);
      const report = await store.verify();
      assert.equal(report.checked, 2);
      assert.equal(report.corrupt.length, 1);
      assert.equal(report.corrupt[0]!.digest, `sha256:${TINY_SHA256}`);
      assert.deepEqual(report.corrupt[0]!.models, ["tiny:latest"]);
      assert.ok(report.corrupt[0]!.quarantinedTo.startsWith(store.dirs.quarantine));
      assert.ok(fs.existsSync(report.corrupt[0]!.quarantinedTo));
      assert.equal(fs.existsSync(blob), false);
      await assert.rejects(store.get("tiny"), isCode("model_not_found", /damaged/));
      assert.deepEqual(
        (await store.list()).map((r) => r.name),
        ["stories:latest"],
      );
      // Importing the good file again heals it.
      await store.importFile(TINY, "tiny");
      assert.equal((await store.get("tiny")).digest, `sha256:${TINY_SHA256}`);
    } finally {
      await store.dispose();
      t.cleanup();
    }
  });
});

describe("ModelStore concurrency", () => {
  test("parallel import/copy/remove on the same names leave a consistent store", async () => {
    const t = tempDir();
    const store = await ModelStore.open({ root: path.join(t.dir, "models") });
    try {
      const ops: Array<Promise<unknown>> = [];
      for (let i = 0; i < 6; i++) {
        ops.push(store.importFile(i % 2 ? STORIES : TINY, "shared"));
        ops.push(store.importFile(i % 2 ? TINY : STORIES, `m${i % 3}`));
        ops.push(store.copy("shared", `c${i % 2}`).catch(() => undefined));
        ops.push(store.remove(`m${(i + 1) % 3}`).catch(() => undefined));
        ops.push(store.gc());
      }
      const results = await Promise.allSettled(ops);
      const unexpected = results.filter((r) => r.status === "rejected");
      assert.deepEqual(unexpected, []);
      // Every registered model is readable and its blob is intact.
      const records = await store.list();
      assert.ok(records.some((r) => r.name === "shared:latest"));
      for (const r of records) {
        assert.ok([`sha256:${STORIES_SHA256}`, `sha256:${TINY_SHA256}`].includes(r.digest));
        assert.ok(fs.existsSync(r.modelPath));
      }
      assert.deepEqual((await store.verify()).corrupt, []);
      // No orphans after a final gc, nothing in tmp/.
      await store.gc();
      const referenced = new Set(records.map((r) => r.digest));
      assert.deepEqual(new Set(await store.blobs.list()), referenced);
      assert.deepEqual(filesUnder(store.dirs.tmp), []);
    } finally {
      await store.dispose();
      t.cleanup();
    }
  });

  test("parallel acquire and remove: a lease that wins keeps its blob", async () => {
    const t = tempDir();
    const store = await ModelStore.open({ root: path.join(t.dir, "models") });
    try {
      await store.importFile(STORIES, "s");
      const [lease, removed] = await Promise.allSettled([store.acquire("s"), store.remove("s")]);
      assert.equal(removed.status, "fulfilled");
      if (lease.status === "fulfilled") {
        assert.ok(fs.existsSync(lease.value.modelPath));
        lease.value.release();
      } else {
        assert.ok(isCode("model_not_found")(lease.reason));
      }
    } finally {
      await store.dispose();
      t.cleanup();
    }
  });
});
