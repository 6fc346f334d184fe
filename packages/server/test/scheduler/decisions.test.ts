import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  decideAdmission,
  decideOomVictims,
  decidePlacement,
  expiryOf,
  planHousekeeping,
} from "../../src/scheduler/decisions.js";
import type { PrewarmWindow } from "../../src/scheduler/policy.js";
import { FixedKeepAlivePolicy, type SchedulingPolicy } from "../../src/scheduler/policy.js";
import { decideSizing, placementEstimate } from "../../src/scheduler/sizing.js";
import { MiB, smallShape, snapshot, view } from "./harness.js";

const lru = new FixedKeepAlivePolicy();

describe("admission", () => {
  test("a free slot with nobody queued is granted; a queued model or busy slots queue; full queues reject", () => {
    assert.equal(decideAdmission(view("a"), snapshot([view("a")])).kind, "grant");
    assert.equal(decideAdmission(view("a", { queued: 1 }), snapshot([view("a", { queued: 1 })])).kind, "queue");
    assert.equal(decideAdmission(view("a", { busy: 2 }), snapshot([])).kind, "queue");
    assert.equal(decideAdmission(view("a", { state: "loading" }), snapshot([])).kind, "queue");
    const full = view("a", { busy: 2, queued: 8, serviceRate: 2 });
    assert.deepEqual(decideAdmission(full, snapshot([full])), {
      kind: "reject",
      retryAfterSeconds: 5, // 9 requests ahead at 2/s
      queued: 8,
      queuedTotal: 8,
    });
    const total = decideAdmission(view("b", { busy: 2 }), snapshot([], { queuedTotal: 16 }));
    assert.equal(total.kind === "reject" && total.retryAfterSeconds, 1, "no observed rate: retry in 1 s");
  });
});

describe("placement", () => {
  const loading = (needed: number, fields = {}) => view("new", { state: "placing", reservedBytes: needed, ...fields });

  test("a model that fits loads; otherwise the least recently used idle model that frees enough goes", () => {
    const models = [
      view("a", { lastUsed: 3 }),
      view("b", { lastUsed: 1 }),
      view("c", { lastUsed: 2, reservedBytes: 300 * MiB }),
    ];
    const fits = decidePlacement(snapshot([...models, loading(500 * MiB)]), lru, {
      model: "new",
      neededBytes: 500 * MiB,
    });
    assert.deepEqual(fits, { kind: "fits" });
    const one = decidePlacement(snapshot([...models, loading(550 * MiB)]), lru, {
      model: "new",
      neededBytes: 550 * MiB,
    });
    assert.deepEqual(one, { kind: "evict", victims: ["b"] }, "b alone frees enough and is the least recent");
    const big = decidePlacement(snapshot([...models, loading(700 * MiB)]), lru, {
      model: "new",
      neededBytes: 700 * MiB,
    });
    assert.deepEqual(big, { kind: "evict", victims: ["c"] }, "only c frees 200 MiB alone");
    const two = decidePlacement(snapshot([...models, loading(900 * MiB)]), lru, {
      model: "new",
      neededBytes: 900 * MiB,
    });
    assert.deepEqual(two, { kind: "evict", victims: ["b", "c"] }, "LRU order, dropping a that is not needed");
  });

  test("memory edges: a model that fills the budget exactly fits; one byte more evicts", () => {
    const s = (needed: number) => snapshot([view("a", { reservedBytes: 400 * MiB }), loading(needed)]);
    assert.deepEqual(decidePlacement(s(600 * MiB), lru, { model: "new", neededBytes: 600 * MiB }), { kind: "fits" });
    assert.deepEqual(decidePlacement(s(600 * MiB + 1), lru, { model: "new", neededBytes: 600 * MiB + 1 }), {
      kind: "evict",
      victims: ["a"],
    });
    const whole = decidePlacement(snapshot([]), lru, { model: "new", neededBytes: 1000 * MiB + 1 });
    assert.equal(whole.kind, "impossible", "bigger than the whole budget");
  });

  test("busy models are never evicted: the load waits, or gives up when nobody wants it any more", () => {
    const busy = view("a", { busy: 1, reservedBytes: 600 * MiB });
    const s = snapshot([busy, loading(500 * MiB)]);
    assert.deepEqual(decidePlacement(s, lru, { model: "new", neededBytes: 500 * MiB }), { kind: "wait" });
    const unwanted = snapshot([busy, loading(500 * MiB, { wanted: false })]);
    assert.deepEqual(decidePlacement(unwanted, lru, { model: "new", neededBytes: 500 * MiB }), { kind: "abandon" });
  });

  test("pinned and keep_alive -1 models are never evicted; a load that cannot fit beside them is impossible", () => {
    const s = snapshot([
      view("pinned", { pinned: true, reservedBytes: 400 * MiB }),
      view("forever", { keepAliveMs: -1, reservedBytes: 400 * MiB }),
      view("idle", { reservedBytes: 100 * MiB }),
    ]);
    assert.deepEqual(decidePlacement(s, lru, { model: "new", neededBytes: 250 * MiB }), {
      kind: "impossible",
      neededBytes: 250 * MiB,
      availableBytes: 200 * MiB,
      budgetBytes: 1000 * MiB,
    });
    assert.deepEqual(decidePlacement(s, lru, { model: "new", neededBytes: 150 * MiB }), {
      kind: "evict",
      victims: ["idle"],
    });
  });

  test("a model whose runner is still stopping holds its memory (also when a fresh load has its name)", () => {
    const s = snapshot([view("new", { state: "unloading", reservedBytes: 600 * MiB }), loading(500 * MiB)]);
    assert.deepEqual(decidePlacement(s, lru, { model: "new", neededBytes: 500 * MiB }), { kind: "wait" });
  });

  test("a policy may only choose among evictable models", () => {
    const rogue: SchedulingPolicy = {
      name: "rogue",
      chooseVictims: () => ["busy"],
      expiresAt: () => null,
      preload: () => [],
    };
    const s = snapshot([view("busy", { busy: 1, reservedBytes: 900 * MiB }), view("idle")]);
    assert.throws(() => decidePlacement(s, rogue, { model: "new", neededBytes: 200 * MiB }), /rogue chose busy/);
  });

  test("after an out-of-memory load every other idle, evictable model goes", () => {
    const s = snapshot([view("a"), view("b", { busy: 1 }), view("c", { pinned: true }), view("d"), view("new")]);
    assert.deepEqual(decideOomVictims(s, "new"), ["a", "d"]);
  });
});

describe("housekeeping", () => {
  test("free slots go to queued requests; drained models unload; expired idle models unload; the next deadline is kept", () => {
    const now = 1_000_000;
    const plan = planHousekeeping(
      snapshot(
        [
          view("queued", { busy: 1, slots: 4, queued: 5, idleSince: null }),
          view("draining", { state: "draining", idleSince: null }),
          view("expired", { idleSince: now - 300_000 }),
          view("later", { idleSince: now - 100_000 }),
          view("zero", { idleSince: now, keepAliveMs: 0 }),
          view("pinned", { pinned: true, idleSince: 0 }),
          view("forever", { keepAliveMs: -1, idleSince: 0 }),
          view("busy", { busy: 1, idleSince: null }),
        ],
        { now },
      ),
      lru,
    );
    assert.deepEqual(plan.grants, [{ model: "queued", count: 3 }]);
    assert.deepEqual(plan.unload, [
      { model: "draining", reason: "unload" },
      { model: "expired", reason: "expired" },
      { model: "zero", reason: "expired" },
    ]);
    assert.equal(plan.wakeAt, now + 200_000, "when 'later' expires");
    assert.deepEqual(plan.preload, []);
  });

  test("keep-alives past Node's timer limit are deadlines like any other", () => {
    const day = 86_400_000;
    const plan = planHousekeeping(snapshot([view("a", { idleSince: 0, keepAliveMs: 25 * day })], { now: 1000 }), lru);
    assert.deepEqual(plan.unload, []);
    assert.equal(plan.wakeAt, 25 * day);
  });
});

describe("rules every policy obeys", () => {
  /** A policy that keeps everything forever and prewarms what it is told. */
  const greedy = (due: PrewarmWindow[] = []): SchedulingPolicy => ({
    name: "greedy",
    chooseVictims: (c, r) => lru.chooseVictims(c, r),
    expiresAt: () => null,
    preload: () => [],
    prewarm: () => ({ due, next: null }),
  });

  test("a keep-alive a request gave is kept as given, whatever the policy says", () => {
    const m = view("a", { idleSince: 1000, keepAliveMs: 60_000, keepAliveExplicit: true });
    assert.equal(expiryOf(m, snapshot([m]), greedy()), 61_000);
    const d = view("d", { idleSince: 1000, keepAliveMs: 60_000 });
    assert.equal(expiryOf(d, snapshot([d]), greedy()), null, "the default keep-alive is the policy's to use");
  });

  test("for real work, prewarmed models nobody used go first, even when the policy would pick another", () => {
    const s = snapshot([
      view("old", { lastUsed: 1 }),
      view("prewarmed", { lastUsed: 500, prewarmed: true }),
      view("new", { state: "loading", reservedBytes: 0 }),
    ]);
    const free = 1000 * MiB - 200 * MiB;
    const d = decidePlacement(s, lru, { model: "new", neededBytes: free + 100 * MiB });
    assert.deepEqual(d, { kind: "evict", victims: ["prewarmed"] }, "LRU alone would have evicted old");
    const both = decidePlacement(s, lru, { model: "new", neededBytes: free + 150 * MiB });
    assert.deepEqual(both, { kind: "evict", victims: ["prewarmed", "old"] });
  });

  test("a prewarm loads only into room: free memory, or idle models the policy gives up; never busy ones", () => {
    const window: PrewarmWindow = { model: "p", after: 0, from: 0, until: 10_000, bytes: 300 * MiB };
    const fits = planHousekeeping(snapshot([view("a", { reservedBytes: 600 * MiB })]), greedy([window]));
    assert.deepEqual(fits.prewarm, [{ window, load: true }]);
    const busy = planHousekeeping(snapshot([view("a", { reservedBytes: 800 * MiB, busy: 1 })]), greedy([window]));
    assert.deepEqual(busy.prewarm, [{ window, load: false }], "read ahead only: the memory is busy");
    const held = planHousekeeping(snapshot([view("p")]), greedy([window]));
    assert.deepEqual(held.prewarm, [], "already loaded");
    const released = planHousekeeping(snapshot([], { releasedByKeepAlive: ["p"] }), greedy([window]));
    assert.deepEqual(released.prewarm, [], "a request's keep-alive let it go");
  });

  test("a job's memory is used now: loads and prewarms do not take it, yet it never makes a load impossible", () => {
    const window: PrewarmWindow = { model: "p", after: 0, from: 0, until: 10_000, bytes: 300 * MiB };
    const withJob = (fields = {}) => snapshot([view("a", { reservedBytes: 400 * MiB, lastUsed: 1 })], fields);
    assert.deepEqual(planHousekeeping(withJob(), greedy([window])).prewarm, [{ window, load: true }]);
    const held = withJob({ jobBytes: 500 * MiB });
    assert.deepEqual(planHousekeeping(held, greedy([window])).prewarm, [{ window, load: true }], "a is evictable");
    const busy = snapshot([view("a", { reservedBytes: 400 * MiB, busy: 1 })], { jobBytes: 500 * MiB });
    assert.deepEqual(planHousekeeping(busy, greedy([window])).prewarm, [{ window, load: false }]);
    assert.deepEqual(decidePlacement(held, lru, { model: "new", neededBytes: 300 * MiB }), {
      kind: "evict",
      victims: ["a"],
    });
    assert.deepEqual(
      decidePlacement(busy, lru, { model: "new", neededBytes: 300 * MiB }),
      { kind: "wait" },
      "the job will give its memory back",
    );
    assert.equal(decidePlacement(busy, lru, { model: "new", neededBytes: 700 * MiB }).kind, "wait");
    assert.equal(decidePlacement(busy, lru, { model: "new", neededBytes: 1001 * MiB }).kind, "impossible");
  });
});

describe("sizing", () => {
  const shape = smallShape(10 * MiB);
  const defaults = { engine: "llama-ffi", contextSize: 4096, parallel: 4, overheadBytes: undefined, gpu: false };
  const request = { model: "m", shape, trainContextSize: 8192, contextSize: undefined, parallel: undefined };

  test("without an explicit context the default halves until the model fits beside unmovable models", () => {
    const roomy = decideSizing(request, defaults, snapshot([]));
    assert.equal(roomy.contextSize, 4096);
    assert.equal(roomy.slots, 4);
    const tight = decideSizing(request, defaults, snapshot([], { memoryBudgetBytes: roomy.ramBytes / 2 }));
    assert.ok(tight.contextSize < 4096 && tight.contextSize >= 256, String(tight.contextSize));
    assert.ok(tight.ramBytes <= roomy.ramBytes / 2);
    const pinned = view("p", { pinned: true, reservedBytes: roomy.ramBytes / 2 });
    const beside = decideSizing(request, defaults, snapshot([pinned], { memoryBudgetBytes: roomy.ramBytes }));
    assert.equal(beside.contextSize, tight.contextSize, "the pinned model's memory is not available");
  });

  test("an explicit context is kept (capped at the training context), even when it cannot fit", () => {
    const s = snapshot([], { memoryBudgetBytes: 1 });
    assert.equal(decideSizing({ ...request, contextSize: 1024 }, defaults, s).contextSize, 1024);
    assert.equal(decideSizing({ ...request, contextSize: 1 << 20 }, defaults, s).contextSize, 8192);
  });

  test("the placement estimate is what a load reserves on a roomy node, and on a full one (smallest context)", () => {
    const e = placementEstimate(request, defaults);
    assert.equal(e.estimatedBytes, decideSizing(request, defaults, snapshot([])).ramBytes);
    const full = decideSizing(request, defaults, snapshot([], { memoryBudgetBytes: 1 }));
    assert.equal(full.contextSize, 256);
    assert.equal(e.minimumBytes, full.ramBytes);
    assert.ok(e.minimumBytes < e.estimatedBytes);
    // The KV cache dominates this model: the estimate is far above its 10 MiB of weights.
    assert.ok(e.estimatedBytes > 5 * shape.tensorBytes, String(e.estimatedBytes));
    // A context set by the model's definition is not shrunk: both are the same.
    const fixed = placementEstimate({ ...request, contextSize: 1024 }, defaults);
    assert.equal(fixed.minimumBytes, fixed.estimatedBytes);
  });

  test("with a GPU of known size the model is split, and only the RAM part is charged", () => {
    const s = snapshot([], { vramBudgetBytes: 12 * MiB });
    const split = decideSizing({ ...request, contextSize: 512 }, { ...defaults, gpu: true }, s);
    assert.ok(split.offload && split.offload.gpuLayers > 0, JSON.stringify(split.offload));
    assert.ok(split.vramBytes > 0 && split.ramBytes < split.estimate.total);
    assert.equal(decideSizing({ ...request, contextSize: 512 }, defaults, s).offload, undefined, "gpu off");
  });
});
