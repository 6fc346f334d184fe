import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { looksLikePath } from "@llmos/protocol";
import { LlmosError } from "../../src/errors.js";
import { ModelStore } from "../../src/store/model-store.js";
import type { CreateProgress } from "../../src/store/create.js";
import { toModelInfo } from "../../src/store/record.js";
import { filesUnder, STORIES, STORIES_SHA256, tempDir, TINY, TINY_SHA256 } from "./helpers.js";

function isCode(code: string, text?: RegExp) {
  return (e: unknown) => e instanceof LlmosError && e.code === code && (text === undefined || text.test(e.message));
}

test("a FROM/ADAPTER reference names a file or a model by one rule (the CLI uploads what the store would import)", () => {
  for (const file of ["/models/a.gguf", "./a", "../b/c", "~/m/x", "weights.GGUF", "dir/model.gguf"])
    assert.equal(looksLikePath(file), true, file);
  for (const model of ["llama3", "llama3:8b", "hf.co/org/repo:Q4_K_M", "org/model", "sha256:abc", "a.ggufx"])
    assert.equal(looksLikePath(model), false, model);
});

describe("ModelStore.create", () => {
  let t: ReturnType<typeof tempDir>;
  let store: ModelStore;
  before(async () => {
    t = tempDir();
    store = await ModelStore.open({ root: path.join(t.dir, "models") });
    await store.importFile(STORIES, "stories");
  });
  after(async () => {
    await store.dispose();
    t.cleanup();
  });

  test("FROM an existing model shares its blob and stores the definition", async () => {
    const events: CreateProgress[] = [];
    const record = await store.create(
      "storyteller",
      "FROM stories\nPARAMETER temperature 0.1\nPARAMETER stop END\nSYSTEM Tell stories.\nMESSAGE user Hi\n",
      { onProgress: (e) => events.push(e) },
    );
    assert.equal(record.digest, `sha256:${STORIES_SHA256}`);
    assert.deepEqual(record.definition.parameters, { temperature: 0.1, stop: ["END"] });
    assert.equal(record.definition.system, "Tell stories.");
    assert.equal(record.definition.from, "stories:latest");
    assert.deepEqual(await store.blobs.list(), [`sha256:${STORIES_SHA256}`], "no copy of the weights");
    assert.deepEqual(
      events.map((e) => e.status),
      ["parsing modelfile", `using existing layer sha256:${STORIES_SHA256}`, "writing manifest", "success"],
    );
    // A model derived from the derived one inherits and overrides.
    const child = await store.create("child", "FROM storyteller\nPARAMETER temperature 0.9\n");
    assert.deepEqual(child.definition.parameters, { temperature: 0.9, stop: ["END"] });
    assert.equal(child.definition.system, "Tell stories.");
    // show's modelfile re-creates the model.
    const info = toModelInfo(child);
    const again = await store.create("again", info.modelfile!);
    assert.deepEqual(again.definition.parameters, child.definition.parameters);
    assert.equal(again.definition.system, child.definition.system);
    assert.equal(again.digest, child.digest);
  });

  test("FROM a file path imports it; FROM a digest uses the blob; ADAPTER paths become blobs", async () => {
    const fromFile = await store.create("tiny-file", `FROM ${TINY}\n`);
    assert.equal(fromFile.digest, `sha256:${TINY_SHA256}`);
    const fromDigest = await store.create(
      "tiny-digest",
      `FROM sha256:${TINY_SHA256}\nADAPTER ${path.basename(STORIES)}\n`,
      {
        baseDir: path.dirname(STORIES),
      },
    );
    assert.equal(fromDigest.digest, `sha256:${TINY_SHA256}`);
    assert.deepEqual(
      fromDigest.adapters.map((a) => a.digest),
      [`sha256:${STORIES_SHA256}`],
    );
    assert.equal(fromDigest.size, fs.statSync(TINY).size + fs.statSync(STORIES).size);
    const lease = await store.acquire("tiny-digest");
    assert.deepEqual(lease.adapterPaths, [store.blobPath(`sha256:${STORIES_SHA256}`)]);
    lease.release();
  });

  test("failures register nothing", async () => {
    const before = (await store.list()).map((r) => r.name);
    await assert.rejects(store.create("x", "PARAMETER temperature 1\n"), isCode("invalid_request", /no FROM/));
    await assert.rejects(store.create("x", "FROM ghost\n"), isCode("model_not_found", /ghost/));
    await assert.rejects(store.create("x", `FROM sha256:${"0".repeat(64)}\n`), isCode("not_found", /not in the store/));
    const junk = path.join(t.dir, "junk.gguf");
    fs.writeFileSync(junk, "not a gguf");
    await assert.rejects(store.create("x", `FROM ${junk}\n`), isCode("invalid_model_file"));
    await assert.rejects(store.create("x", `FROM stories\nADAPTER ${junk}\n`), isCode("invalid_model_file"));
    await assert.rejects(store.create("x", "FROM stories\nPARAMETER top_k -3\n"), isCode("invalid_request", /line 2/));
    await assert.rejects(store.create("x/../y", "FROM stories\n"), isCode("invalid_model_name"));
    assert.deepEqual(
      (await store.list()).map((r) => r.name),
      before,
    );
    assert.deepEqual(filesUnder(store.dirs.tmp), []);
  });

  test("createFromSpec takes Ollama's structured fields", async () => {
    const record = await store.createFromSpec("spec", {
      from: "stories",
      parameters: { num_ctx: "256", stop: ["a", "b"] },
      template: "{{ .Prompt }}",
      messages: [{ role: "user", content: "hi" }],
    });
    assert.deepEqual(record.definition.parameters, { num_ctx: 256, stop: ["a", "b"] });
    assert.equal(record.definition.template, "{{ .Prompt }}");
    await assert.rejects(store.createFromSpec("spec2", { from: "" }), isCode("invalid_request", /from/));
  });
});

describe("ModelStore blobs upload", () => {
  test("putBlob verifies the digest; an uploaded blob survives gc and can be used by create", async () => {
    const t = tempDir();
    const store = await ModelStore.open({ root: path.join(t.dir, "models") });
    try {
      const digest = `sha256:${TINY_SHA256}`;
      assert.equal(await store.hasBlob(digest), false);
      await assert.rejects(
        store.putBlob(`sha256:${STORIES_SHA256}`, fs.createReadStream(TINY)),
        isCode("invalid_request", /digest mismatch/),
      );
      assert.deepEqual(filesUnder(store.dirs.blobs), []);
      assert.deepEqual(filesUnder(store.dirs.tmp), []);
      const put = await store.putBlob(digest, fs.createReadStream(TINY));
      assert.deepEqual(put, { digest, size: fs.statSync(TINY).size, existed: false });
      assert.equal(await store.hasBlob(digest), true);
      assert.deepEqual((await store.gc()).removed, []);
      await store.create("uploaded", `FROM ${digest}\n`);
      assert.equal((await store.get("uploaded")).digest, digest);
      // A blob that is not GGUF can be uploaded but not used as a model.
      const text = Buffer.from("plain text");
      const { createHash } = await import("node:crypto");
      const textDigest = `sha256:${createHash("sha256").update(text).digest("hex")}`;
      await store.putBlob(textDigest, Readable.from([text]));
      await assert.rejects(store.create("bad", `FROM ${textDigest}\n`), isCode("invalid_model_file"));
      await assert.rejects(store.hasBlob("md5:abc"), isCode("invalid_request"));
    } finally {
      await store.dispose();
      t.cleanup();
    }
  });

  test("an unreferenced upload is collected after the grace time", async () => {
    const t = tempDir();
    const store = await ModelStore.open({ root: path.join(t.dir, "models"), uploadGraceMs: 0 });
    try {
      await store.putBlob(`sha256:${TINY_SHA256}`, fs.createReadStream(TINY));
      assert.deepEqual((await store.gc()).removed, [`sha256:${TINY_SHA256}`]);
    } finally {
      await store.dispose();
      t.cleanup();
    }
  });
});
