import assert from "node:assert/strict";
import { test } from "node:test";
import { FairQueue } from "../../src/scheduler/fair-queue.js";
import { chooseEvictions } from "../../src/scheduler/placement.js";
import { estimateMemory } from "../../src/scheduler/memory-estimator.js";

test("a tenant's burst does not starve another tenant", () => {
  const q = new FairQueue<string>();
  for (let i = 1; i <= 20; i++) q.push(`a${i}`, "A", "interactive");
  q.push("b1", "B", "interactive");
  q.push("b2", "B", "interactive");
  const order = q.drain();
  assert.ok(order.indexOf("b2") < 5, order.join(","));
  assert.deepEqual(
    order.filter((x) => x.startsWith("a")),
    Array.from({ length: 20 }, (_, i) => `a${i + 1}`),
  );
});

test("interactive requests go before batch ones; FIFO within a tenant", () => {
  const q = new FairQueue<string>();
  q.push("batch1", "A", "batch");
  q.push("i1", "B", "interactive");
  q.push("batch2", "A", "batch");
  q.push("i2", "B", "interactive");
  assert.deepEqual(q.drain(), ["i1", "i2", "batch1", "batch2"]);
});

test("weights give a tenant a larger share", () => {
  const q = new FairQueue<string>((t) => (t === "A" ? 3 : 1));
  for (let i = 0; i < 8; i++) q.push(`a${i}`, "A", "interactive");
  for (let i = 0; i < 8; i++) q.push(`b${i}`, "B", "interactive");
  const first8 = q.drain().slice(0, 8);
  assert.equal(first8.filter((x) => x.startsWith("a")).length, 6);
});

test("remove and positions", () => {
  const q = new FairQueue<string>();
  q.push("a1", "A", "interactive");
  q.push("a2", "A", "interactive");
  q.push("b1", "B", "interactive");
  assert.equal(q.positionOf("b1"), 2);
  assert.ok(q.remove("a1"));
  assert.equal(q.size, 2);
  assert.equal(q.remove("zzz"), false);
  assert.deepEqual(q.tenants(), { A: 1, B: 1 });
});

test("an idle tenant banks no credit", () => {
  const q = new FairQueue<string>();
  for (let i = 0; i < 10; i++) q.push(`a${i}`, "A", "interactive");
  for (let i = 0; i < 10; i++) q.shift();
  for (let i = 0; i < 4; i++) q.push(`a${10 + i}`, "A", "interactive");
  for (let i = 0; i < 4; i++) q.push(`b${i}`, "B", "interactive");
  const order = q.drain();
  // B arrives late and gets its fair share, not 10 turns in a row.
  assert.deepEqual(order.slice(0, 4).sort(), ["a10", "a11", "b0", "b1"].sort());
});

test("evictions: the fewest models, least recently used first", () => {
  const c = [
    { key: "old-small", bytes: 100, lastUsed: 1 },
    { key: "mid-big", bytes: 500, lastUsed: 2 },
    { key: "new-big", bytes: 500, lastUsed: 3 },
  ];
  assert.deepEqual(
    chooseEvictions(c, 400)!.map((x) => x.key),
    ["mid-big"],
  );
  assert.deepEqual(
    chooseEvictions(c, 50)!.map((x) => x.key),
    ["old-small"],
  );
  assert.deepEqual(
    chooseEvictions(c, 900)!
      .map((x) => x.key)
      .sort(),
    ["mid-big", "new-big"],
  );
  assert.equal(chooseEvictions(c, 2000), undefined);
  assert.deepEqual(chooseEvictions(c, 0), []);
});

test("memory estimate grows with context and slots", () => {
  const shape = {
    tensorBytes: 1_000_000,
    blockCount: 5,
    headCount: 8,
    headCountKv: 4,
    embeddingLength: 64,
    feedForwardLength: 172,
    vocabSize: 512,
  };
  const a = estimateMemory(shape, { contextSize: 512, slots: 1, engine: "llama-node" });
  const b = estimateMemory(shape, { contextSize: 2048, slots: 4, engine: "llama-node" });
  assert.equal(a.kvCache, 2 * 5 * 4 * 8 * 512 * 2);
  assert.ok(b.total > a.total);
  assert.equal(a.weights, 1_000_000);
});
