/**
 * Not enough disk for the estimated output: the quantizer refuses after llama.cpp's dry run, before the worker
 * writes a byte, and leaves nothing behind (a real store and a real worker; the store's reserve makes the disk
 * "full").
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { test } from "node:test";
import { LlmosError } from "../../src/errors.js";
import { ModelQuantizer } from "../../src/model-jobs/index.js";
import { ToolWorkers } from "../../src/runtime/tool-worker.js";
import { freeBytes } from "../../src/store/disk-space.js";
import { ModelStore } from "../../src/store/index.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { STORIES, tempDir } from "../store/helpers.js";

/** No scheduler here: the worker's memory is granted as asked. */
const NO_BUDGET = { reserveJobMemory: async () => ({ bytes: 0, release: () => {} }) };

test("not enough disk for the estimated output is its own error and leaves no file", async () => {
  const { dir, cleanup } = tempDir("llmos-qdisk-");
  try {
    const workers = new ToolWorkers(createLogger("silent"));
    const roomy = await ModelStore.open({ root: dir });
    await roomy.importFile(STORIES, "stories");
    const made = await new ModelQuantizer(roomy, workers, 1, NO_BUDGET).quantize({
      model: "stories",
      name: "fits",
      type: "Q8_0",
    });
    await roomy.dispose();
    // A reserve beyond the free space (by a TiB, so that space freed meanwhile by other processes cannot make
    // room): no output fits.
    const store = await ModelStore.open({ root: dir, reserveBytes: (await freeBytes(dir))! + 2 ** 40 });
    const blobsBefore = readdirSync(store.dirs.blobs).sort();
    const quantizer = new ModelQuantizer(store, workers, 1, NO_BUDGET);
    await assert.rejects(quantizer.quantize({ model: "stories", name: "too-big", type: "Q8_0" }), (e: unknown) => {
      assert.ok(e instanceof LlmosError && e.code === "insufficient_storage", String(e));
      assert.match(e.message, /Q8_0 model \(estimated\)/);
      // The estimate (llama.cpp's dry run plus header and padding) is the real output's size, give or take.
      const needed = e.details!["neededBytes"] as number;
      assert.ok(needed >= made.size && needed < made.size + 64 * 1024, `${needed} vs ${made.size}`);
      return true;
    });
    assert.deepEqual(readdirSync(store.dirs.tmp), []);
    assert.deepEqual(readdirSync(store.dirs.blobs).sort(), blobsBefore);
    assert.equal(await store.has("too-big"), false);
    await store.dispose();
  } finally {
    cleanup();
  }
});
