import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  GgufArrayRef,
  GgufError,
  findDuplicateToken,
  largeVocabularyGguf,
  metadataForDisplay,
  parseGgufBuffer,
  readGguf,
  summarizeGguf,
  validateModelMetadata,
} from "../src/index.js";
import { STORIES, TINY, modelBytes } from "./models.js";

/** What the daemon's store asks of the reader. */
const BOUNDED = { maxMaterializedArray: 4096, maxMaterializedTotal: 256 * 1024 };

describe("bounded GGUF reading", () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), "gguf-bounded-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("large arrays stay GgufArrayRefs: same summary, same validation, same display as when built", async () => {
    const full = await readGguf(TINY);
    const lazy = await readGguf(TINY, BOUNDED);
    const tokens = lazy.metadata["tokenizer.ggml.tokens"];
    assert.ok(tokens instanceof GgufArrayRef);
    assert.equal(tokens.length, 32000);
    assert.deepEqual(tokens.toArray(), full.metadata["tokenizer.ggml.tokens"]);
    assert.deepEqual(
      [...(lazy.metadata["tokenizer.ggml.scores"] as GgufArrayRef)],
      full.metadata["tokenizer.ggml.scores"],
    );
    assert.deepEqual(summarizeGguf(lazy), summarizeGguf(full));
    assert.deepEqual(metadataForDisplay(lazy), metadataForDisplay(full));
    assert.equal(JSON.stringify(tokens), '"[32000 items]"');
    validateModelMetadata(lazy);
    // Small arrays are still built.
    const stories = await readGguf(STORIES, { ...BOUNDED, maxMaterializedArray: 1000 });
    assert.ok(Array.isArray(stories.metadata["tokenizer.ggml.tokens"]));
  });

  test("maxMaterializedTotal bounds all arrays together: once spent, later arrays stay refs", () => {
    const b = modelBytes(TINY);
    const f = parseGgufBuffer(b, b.length, { maxMaterializedArray: Infinity, maxMaterializedTotal: 40000 });
    const kinds = ["tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"].map((k) =>
      f.metadata[k] instanceof GgufArrayRef ? "ref" : "built",
    );
    assert.deepEqual(kinds, ["built", "ref", "ref"]);
  });

  test("a vocabulary with a repeated token is found from the bytes, built or not", () => {
    const dup = largeVocabularyGguf({ tokens: 50_000, duplicateOf: 12_345 });
    for (const limits of [BOUNDED, {}]) {
      const f = parseGgufBuffer(dup, dup.length, limits);
      const tokens = f.metadata["tokenizer.ggml.tokens"]!;
      assert.deepEqual(findDuplicateToken(tokens as GgufArrayRef), { text: "t12345", first: 12_345, second: 49_999 });
      assert.throws(
        () => validateModelMetadata(f),
        (e: unknown) => e instanceof GgufError && /"t12345" twice \(ids 12345 and 49999\)/.test(e.message),
      );
    }
    const clean = largeVocabularyGguf({ tokens: 50_000 });
    validateModelMetadata(parseGgufBuffer(clean, clean.length, BOUNDED));
  });

  test("empty tokens count as [EMPTY_<id>], as llama.cpp renames them", () => {
    const b = modelBytes(STORIES);
    const f = parseGgufBuffer(b, b.length, { maxMaterializedArray: 0 });
    const ref = f.metadata["tokenizer.ggml.tokens"] as GgufArrayRef;
    assert.equal(findDuplicateToken(ref), undefined);
    assert.equal(findDuplicateToken(["a", "", "[EMPTY_2]"]), undefined);
    assert.deepEqual(findDuplicateToken(["a", "", "[EMPTY_1]"]), { text: "[EMPTY_1]", first: 1, second: 2 });
  });

  test("a header past maxHeaderBytes is refused after reading at most that much, before any value is built", async () => {
    const file = join(dir, "big-header.gguf");
    writeFileSync(file, largeVocabularyGguf({ tokens: 400_000 })); // about 5 MiB of header
    await assert.rejects(readGguf(file, { ...BOUNDED, maxHeaderBytes: 1024 * 1024 }), (e: unknown) => {
      assert.ok(e instanceof GgufError && e.code === "limit_exceeded", String(e));
      assert.match(e.message, /above maxHeaderBytes \(1048576\)/);
      return true;
    });
    const ok = await readGguf(file, BOUNDED);
    assert.equal((ok.metadata["tokenizer.ggml.tokens"] as GgufArrayRef).length, 400_000);
  });

  test("a 24 MiB vocabulary costs the heap little when left unparsed, and tens of MiB when built", async () => {
    const file = join(dir, "huge-vocab.gguf");
    writeFileSync(file, largeVocabularyGguf({ tokens: 2_000_000 }));
    const heap = () => process.memoryUsage().heapUsed;
    const before = heap();
    const lazy = await readGguf(file, { ...BOUNDED, maxHeaderBytes: 64 * 1024 * 1024 });
    validateModelMetadata(lazy);
    const lazyGrowth = heap() - before;
    assert.ok(lazyGrowth < 16 * 1024 * 1024, `unparsed: heap grew ${lazyGrowth} bytes`);
    // The same file, every array built: the cost the bounded reading avoids (checked so the test cannot pass
    // for a reason other than the one it claims).
    const built = await readGguf(file, { maxHeaderBytes: 64 * 1024 * 1024 });
    const builtGrowth = heap() - before;
    assert.ok(
      builtGrowth > lazyGrowth + 40 * 1024 * 1024,
      `built: heap grew ${builtGrowth} bytes (unparsed ${lazyGrowth})`,
    );
    assert.equal((built.metadata["tokenizer.ggml.tokens"] as string[]).length, 2_000_000);
  });
});
