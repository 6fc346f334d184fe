import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { TINY_RANDOM } from "../support/paths.js";
import { api, startTestDaemon, TEST_ENGINE, type TestDaemon } from "../support/daemon.js";
import { slowModel } from "../support/synth.js";
import { readGguf, summarizeGguf } from "@llmos/gguf";
import { estimateMemory } from "../../src/scheduler/memory-estimator.js";

const MiB = 1024 * 1024;

async function loaded(d: TestDaemon): Promise<string[]> {
  return (await api(d, "GET", "/api/ps")).json.models
    .filter((m: any) => m.state === "ready")
    .map((m: any) => m.name)
    .sort();
}

async function waitFor(fn: () => Promise<boolean>, ms = 15_000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const complete = (d: TestDaemon, model: string, extra: Record<string, unknown> = {}) =>
  api(d, "POST", "/v1/completions", { model, prompt: "Once upon a time", max_tokens: 4, temperature: 0, ...extra });

/**
 * Memory decisions with real runners. Each model's reservation is measured first (it depends on the engine:
 * e.g. with llama-ffi stories ~96 MiB, tiny ~95 MiB, slow ~142 MiB); budgets below are built from those numbers
 * to force decisions.
 */
describe("placement and eviction under a memory budget", () => {
  let d: TestDaemon;
  let sizes: Record<string, number>;
  before(async () => {
    d = await startTestDaemon({ memoryBudgetBytes: 4096 * MiB }, { importStories: "stories:a" });
    await d.store.copy("stories:a", "stories:b");
    await d.store.importFile(TINY_RANDOM, "tiny");
    await d.store.importFile(await slowModel(), "slow");
    // Measure each model's reservation once, then shrink the budget to fit exactly two stories copies.
    sizes = {};
    // Twice: the first load measures the runner's own overhead, which later estimates use.
    for (const m of ["stories:a", "tiny", "slow", "stories:a", "tiny", "slow"]) {
      const r = await api(d, "POST", `/api/models/${m}/load`, {});
      assert.equal(r.status, 200, r.text);
      sizes[m] = r.json.memory.estimatedBytes;
      assert.ok(r.json.memory.rssBytes > 0);
      await api(d, "POST", `/api/models/${m}/unload`);
    }
    assert.deepEqual(await loaded(d), []);
  });
  after(async () => d?.stop());

  const setBudget = (bytes: number) => d.scheduler.setLimits({ memoryBudgetBytes: bytes });

  test("several models stay loaded when they fit; the least recently used idle one is evicted", async () => {
    setBudget(sizes["stories:a"]! * 2 + Math.floor(sizes["tiny"]! / 2));
    assert.equal((await complete(d, "stories:a")).status, 200);
    assert.equal((await complete(d, "stories:b")).status, 200);
    assert.equal((await complete(d, "stories:a")).status, 200); // a is now the most recent
    assert.deepEqual(await loaded(d), ["stories:a", "stories:b"]);
    assert.equal((await complete(d, "tiny", { prompt: "hello" })).status, 200);
    assert.deepEqual(await loaded(d), ["stories:a", "tiny:latest"], "b was the least recently used");
    await api(d, "POST", "/api/models/stories:a/unload");
    await api(d, "POST", "/api/models/tiny/unload");
  });

  test("a pinned model and a keep_alive=-1 model are never evicted; an impossible load fails at once with numbers", async () => {
    setBudget(sizes["stories:a"]! * 2 + Math.floor(sizes["tiny"]! / 2));
    assert.equal((await api(d, "POST", "/api/models/stories:a/load", { pinned: true })).status, 200);
    assert.equal((await complete(d, "stories:b", { keep_alive: -1 })).status, 200);
    const started = Date.now();
    const r = await complete(d, "tiny", { prompt: "hello" });
    assert.equal(r.status, 507, r.text);
    assert.equal(r.json.error.code, "insufficient_memory");
    assert.match(r.json.error.message, /needs .* but at most .* can be freed/);
    assert.ok(Date.now() - started < 5000, "fails at once, without waiting");
    assert.deepEqual(await loaded(d), ["stories:a", "stories:b"]);
    // Unpinning (an explicit unload) removes it; then tiny fits.
    await api(d, "POST", "/api/models/stories:a/unload");
    assert.equal((await complete(d, "tiny", { prompt: "hello" })).status, 200);
    assert.deepEqual(await loaded(d), ["stories:b", "tiny:latest"], "keep_alive=-1 survived the pressure");
    await api(d, "POST", "/api/models/stories:b/unload");
    await api(d, "POST", "/api/models/tiny/unload");
  });

  test("a busy model is not evicted: the new load waits until it is idle", async () => {
    setBudget(sizes["slow"]! + sizes["stories:a"]! + 8 * MiB);
    assert.equal((await complete(d, "stories:a")).status, 200);
    const long = api(d, "POST", "/v1/completions", {
      model: "slow",
      prompt: "hello",
      max_tokens: 400,
      temperature: 0,
      ignore_eos: true,
    });
    await waitFor(
      async () =>
        (await api(d, "GET", "/api/ps")).json.models.some((m: any) => m.name === "slow:latest" && m.slotsBusy === 1),
      30_000,
      "slow busy",
    );
    let tinyDone = false;
    const tiny = complete(d, "tiny", { prompt: "hello" }).then((r) => ((tinyDone = true), r));
    await new Promise((r) => setTimeout(r, 300));
    const psDuring = (await api(d, "GET", "/api/ps")).json.models;
    assert.equal(tinyDone, false, "tiny must wait for the busy model");
    assert.ok(
      psDuring.some((m: any) => m.name === "slow:latest" && m.slotsBusy === 1),
      "the busy model is still loaded",
    );
    const longResult = await long;
    assert.equal(longResult.status, 200);
    assert.equal(longResult.json.usage.completion_tokens, 400, "the busy model's request ran to the end");
    const t = await tiny;
    assert.equal(t.status, 200, t.text);
    assert.ok((await loaded(d)).includes("tiny:latest"));
    await api(d, "POST", "/api/models/tiny/unload");
  });

  test("keep_alive=0 unloads right after the request", async () => {
    setBudget(4096 * MiB);
    assert.equal((await complete(d, "stories:b", { keep_alive: 0 })).status, 200);
    await waitFor(async () => !(await loaded(d)).includes("stories:b"), 5000, "stories:b unloaded");
  });

  test("the estimate stays within 15% of the runner's measured RSS", async () => {
    const r = await api(d, "POST", "/api/models/slow/load", {});
    const { estimatedBytes, rssBytes } = r.json.memory;
    assert.ok(Math.abs(estimatedBytes - rssBytes) / rssBytes < 0.15, `estimate ${estimatedBytes} vs rss ${rssBytes}`);
  });
});

describe("a model that can never fit", () => {
  let d: TestDaemon;
  before(async () => (d = await startTestDaemon({ memoryBudgetBytes: 50 * MiB })));
  after(async () => d?.stop());

  test("fails at once with insufficient_memory giving needed and available bytes", async () => {
    const openai = await complete(d, "stories");
    assert.equal(openai.status, 507);
    assert.equal(openai.json.error.code, "insufficient_memory");
    const r = await api(d, "POST", "/api/models/stories/load", {});
    assert.equal(r.status, 507);
    assert.ok(r.json.error.details.neededBytes > r.json.error.details.availableBytes);
    assert.equal(r.json.error.details.availableBytes, 50 * MiB);
  });
});

describe("queues: fairness, bounds, cancellation", () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon({ maxQueuePerModel: 40 });
    await d.store.importFile(await slowModel(), "slow");
    assert.equal((await api(d, "POST", "/api/models/stories/load", { parallel: 1 })).status, 200);
    assert.equal((await api(d, "POST", "/api/models/slow/load", { parallel: 1 })).status, 200);
  });
  after(async () => d?.stop());

  test("tenant A's burst of 20 does not starve tenant B's 2", async () => {
    const order: string[] = [];
    const send = (who: string, i: number) =>
      complete(d, "slow", { prompt: "hi", max_tokens: 30, ignore_eos: true, user: who }).then((r) => {
        assert.equal(r.status, 200);
        order.push(`${who}${i}`);
      });
    const all: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) all.push(send("A", i));
    await waitFor(
      async () => (await api(d, "GET", "/api/ps")).json.models.find((m: any) => m.name === "slow:latest").queued >= 12,
      10_000,
      "A queued",
    );
    for (let i = 0; i < 2; i++) all.push(send("B", i));
    await Promise.all(all);
    const lastB = Math.max(order.indexOf("B0"), order.indexOf("B1"));
    const aDoneBefore = order.slice(0, lastB).filter((x) => x.startsWith("A")).length;
    assert.ok(20 - aDoneBefore >= 10, `B finished after ${aDoneBefore} of A's requests: ${order.join(",")}`);
  });

  test("a full queue answers 503 with Retry-After; a cancelled queued request never runs", async () => {
    d.scheduler.setLimits({ maxQueuePerModel: 2 });
    const metric = async () => {
      const text = (await api(d, "GET", "/metrics")).text;
      return [...text.matchAll(/llmos_generations_total\{model="slow:latest",reason="\w+"\} (\d+)/g)].reduce(
        (n, m) => n + Number(m[1]),
        0,
      );
    };
    const before = await metric();
    const hold = api(d, "POST", "/v1/completions", {
      model: "slow",
      prompt: "hello",
      max_tokens: 300,
      temperature: 0,
      ignore_eos: true,
    });
    await waitFor(
      async () =>
        (await api(d, "GET", "/api/ps")).json.models.find((m: any) => m.name === "slow:latest").slotsBusy === 1,
      10_000,
      "hold busy",
    );
    const controller = new AbortController();
    const cancelled = fetch(`${d.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "slow", prompt: "hello", max_tokens: 5 }),
      signal: controller.signal,
    }).catch((e) => e);
    const queued = complete(d, "slow", { prompt: "hi" });
    await waitFor(
      async () => (await api(d, "GET", "/api/ps")).json.models.find((m: any) => m.name === "slow:latest").queued === 2,
      10_000,
      "two queued",
    );
    const full = await complete(d, "slow", { prompt: "hi" });
    assert.equal(full.status, 503);
    assert.equal(full.json.error.code, "queue_full");
    assert.ok(Number(full.headers.get("retry-after")) >= 1);
    controller.abort();
    await waitFor(
      async () => (await api(d, "GET", "/api/ps")).json.models.find((m: any) => m.name === "slow:latest").queued === 1,
      5000,
      "cancelled request left the queue",
    );
    assert.equal((await hold).status, 200);
    assert.equal((await queued).status, 200);
    assert.ok((await cancelled) instanceof Error);
    assert.equal((await metric()) - before, 2, "only the two requests that were not cancelled ran");
  });
});

describe("context size chosen to fit", () => {
  let d: TestDaemon;
  after(async () => d?.stop());

  test("without an explicit context, the default shrinks until the model fits the budget; ps says what was chosen", async () => {
    const file = await slowModel();
    const summary = summarizeGguf(await readGguf(file));
    const shape = {
      tensorBytes: summary.tensorBytes,
      blockCount: summary.blockCount!,
      headCount: summary.headCount!,
      headCountKv: summary.headCountKv ?? summary.headCount!,
      embeddingLength: summary.embeddingLength!,
      feedForwardLength: summary.feedForwardLength!,
      vocabSize: summary.vocabSize!,
    };
    const at = (ctx: number) => estimateMemory(shape, { contextSize: ctx * 4, slots: 4, engine: TEST_ENGINE }).total;
    assert.ok(at(4096) > at(512) + 8 * MiB);
    d = await startTestDaemon(
      { contextSize: 4096, parallel: 4, memoryBudgetBytes: at(512) + MiB },
      { importStories: false },
    );
    await d.store.importFile(file, "slow");
    const r = await api(d, "POST", "/v1/completions", { model: "slow", prompt: "hello", max_tokens: 4 });
    assert.equal(r.status, 200, r.text);
    const entry = (await api(d, "GET", "/api/ps")).json.models.find((m: any) => m.name === "slow:latest");
    assert.equal(entry.contextSize, 512);
    assert.ok(entry.memory.estimatedBytes <= at(512) + MiB);
    // An explicit context is honoured or refused, never shrunk.
    await api(d, "POST", "/api/models/slow/unload");
    const explicit = await api(d, "POST", "/api/models/slow/load", { contextSize: 4096 });
    assert.equal(explicit.status, 507);
  });
});
