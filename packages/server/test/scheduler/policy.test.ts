/**
 * The policy seam: a policy decides what to evict, how long an idle model stays and what to preload, over a
 * snapshot; the scheduler applies its choices. These tests swap the default LRU policy for others.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { FixedKeepAlivePolicy, type SchedulingPolicy } from "../../src/scheduler/policy.js";
import type { ModelView, SchedulerSnapshot } from "../../src/scheduler/snapshot.js";
import { harness, settle, use } from "./harness.js";

/** Evicts the largest idle model first (frees memory with the fewest reloads of small models). */
class LargestFirst extends FixedKeepAlivePolicy {
  override readonly name = "largest-first";
  override chooseVictims(candidates: readonly ModelView[], request: { neededBytes: number }): string[] | undefined {
    const chosen: string[] = [];
    let freed = 0;
    for (const m of [...candidates].sort((a, b) => b.reservedBytes - a.reservedBytes)) {
      if (freed >= request.neededBytes) break;
      chosen.push(m.name);
      freed += m.reservedBytes;
    }
    return freed >= request.neededBytes ? chosen : undefined;
  }
}

test("the default policy (fixed keep-alive) evicts the least recently used model", async () => {
  const h = harness({ big: 500, small: 200, next: 400 });
  await use(h, "small");
  await h.clock.advance(10);
  await use(h, "big");
  await use(h, "next");
  assert.deepEqual(h.ready(), ["big:latest", "next:latest"]);
});

test("a swapped eviction policy decides which model goes", async () => {
  const h = harness({ big: 500, small: 200, next: 400 }, {}, { policy: new LargestFirst() });
  await use(h, "small");
  await h.clock.advance(10);
  await use(h, "big");
  await use(h, "next");
  assert.deepEqual(h.ready(), ["next:latest", "small:latest"], "the largest went, although used last");
});

test("a keep-alive policy sees the snapshot and decides when an idle model goes", async () => {
  const seen: SchedulerSnapshot[] = [];
  // The most recently used model stays 30 s, the others 10 s (a stand-in for a learned keep-alive).
  const policy: SchedulingPolicy = {
    name: "recent-stays-longer",
    chooseVictims: (candidates, request) => new FixedKeepAlivePolicy().chooseVictims(candidates, request),
    expiresAt: (m, snapshot) => {
      seen.push(snapshot);
      const latest = Math.max(...snapshot.models.map((x) => x.lastUsed));
      return m.idleSince === null ? null : m.idleSince + (m.lastUsed === latest ? 30_000 : 10_000);
    },
    preload: () => [],
  };
  const h = harness({ a: 100, b: 100 }, { keepAliveMs: 3_600_000 }, { policy });
  await use(h, "a");
  await h.clock.advance(1_000);
  await use(h, "b");
  await h.clock.advance(10_000);
  assert.deepEqual(h.ready(), ["b:latest"], "a went after 10 s");
  await h.clock.advance(20_000);
  assert.deepEqual(h.ready(), [], "b, the most recent, after 30 s");
  assert.ok(seen.length > 0 && seen.every((s) => s.memoryBudgetBytes > 0));
});

test("a preload policy gets models loaded before any request asks for them", async () => {
  const policy = new (class extends FixedKeepAlivePolicy {
    override preload() {
      return ["warm"];
    }
  })();
  const h = harness({ warm: 100 }, {}, { policy });
  await settle();
  assert.deepEqual(h.ready(), ["warm:latest"]);
  assert.equal(h.events.filter((e) => e.type === "request.queued").length, 0);
});
