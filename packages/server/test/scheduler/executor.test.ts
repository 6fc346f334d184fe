/**
 * The scheduler's decisions applied, with fake runners and a fake clock: what loads, what is evicted and when,
 * who gets a slot, what happens on a crash. Milliseconds per test; the same behaviours run end to end with real
 * runners in test/e2e/scheduling.test.ts and resilience.test.ts.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { LlmosError } from "../../src/errors.js";
import { MAX_KEEP_ALIVE_MS } from "../../src/scheduler/keep-alive.js";
import { oomFailure } from "../support/fake-runner.js";
import { harness, MiB, settle, use } from "./harness.js";

const DAY = 86_400_000;
const code = (e: unknown) => (e instanceof LlmosError ? e.code : String(e));

describe("placement and eviction", () => {
  test("models load until the budget is full; then the least recently used idle one is evicted", async () => {
    const h = harness({ a: 400, b: 400, c: 400 });
    await use(h, "a");
    await use(h, "b");
    h.clock.advance(1000);
    await use(h, "a"); // a is now the most recently used
    assert.deepEqual(h.ready(), ["a:latest", "b:latest"]);
    await use(h, "c");
    assert.deepEqual(h.ready(), ["a:latest", "c:latest"], "b was the least recently used");
    const unloaded = h.events.filter((e) => e.type === "model.unloaded");
    assert.deepEqual(
      unloaded.map((e) => e.type === "model.unloaded" && [e.model, e.reason]),
      [["b:latest", "evicted"]],
    );
    assert.equal(h.source.leases, 2, "the evicted model's files went back to the store");
  });

  test("pinned and keep_alive -1 models are never evicted; a load that cannot fit fails at once with numbers", async () => {
    const h = harness({ a: 400, b: 400, c: 300 });
    await h.scheduler.load("a", { pinned: true });
    await use(h, "b", { keepAliveMs: -1 });
    const error = await h.scheduler.acquire("c").catch((e: unknown) => e);
    assert.equal(code(error), "insufficient_memory");
    assert.deepEqual((error as LlmosError).details, {
      neededBytes: 300 * MiB,
      availableBytes: 200 * MiB,
      budgetBytes: 1000 * MiB,
    });
    assert.deepEqual(h.ready(), ["a:latest", "b:latest"]);
    assert.equal(h.runners.started.length, 2, "no runner was started for c");
  });

  test("a busy model is not evicted: the load waits until it is idle, then evicts it", async () => {
    const h = harness({ a: 600, b: 600 });
    const lease = await h.scheduler.acquire("a");
    let granted = false;
    const b = h.scheduler.acquire("b").then((l) => ((granted = true), l));
    await settle();
    assert.equal(granted, false);
    assert.deepEqual(
      h.scheduler.snapshot().models.map((m) => [m.name, m.state]),
      [
        ["a:latest", "ready"],
        ["b:latest", "placing"],
      ],
    );
    lease.release();
    (await b).release();
    assert.deepEqual(h.ready(), ["b:latest"]);
  });

  test("a load nobody waits for any more is abandoned while it waits for memory", async () => {
    const h = harness({ a: 600, b: 600 });
    const lease = await h.scheduler.acquire("a");
    const controller = new AbortController();
    const b = h.scheduler.acquire("b", { signal: controller.signal }).catch((e: unknown) => e);
    await settle();
    controller.abort();
    assert.equal(code(await b), "client_closed");
    await settle();
    const failed = h.events.find((e) => e.type === "model.load_failed");
    assert.ok(failed && failed.type === "model.load_failed" && failed.code === "client_closed");
    assert.equal(h.runners.started.length, 1);
    lease.release();
    await settle();
    assert.deepEqual(h.ready(), ["a:latest"], "a stays: nothing needs its memory now");
  });

  test("out of memory on start: every idle model is evicted and the load retried once", async () => {
    const h = harness({ a: 200, b: 200, c: 200 });
    await use(h, "a");
    await use(h, "b");
    h.runners.failures.push(oomFailure());
    await use(h, "c");
    assert.deepEqual(h.ready(), ["c:latest"]);
    const reasons = h.events.flatMap((e) => (e.type === "model.unloaded" ? [e.reason] : []));
    assert.deepEqual(reasons, ["oom_retry", "oom_retry"]);

    h.runners.failures.push(oomFailure(), oomFailure());
    const error = await h.scheduler.acquire("a").catch((e: unknown) => e);
    assert.equal(code(error), "insufficient_memory", "the second failure is the answer");
    assert.equal(
      h.scheduler.snapshot().models.find((m) => m.name === "a:latest"),
      undefined,
    );
  });
});

describe("keep-alive", () => {
  test("an idle model is unloaded its keep-alive after its last request, not before; a new request restarts the clock", async () => {
    const h = harness({ a: 100 }, { keepAliveMs: 60_000 });
    await use(h, "a");
    await h.clock.advance(59_000);
    assert.deepEqual(h.ready(), ["a:latest"]);
    await use(h, "a");
    await h.clock.advance(59_000);
    assert.deepEqual(h.ready(), ["a:latest"], "the second request restarted the clock");
    await h.clock.advance(1_000);
    assert.deepEqual(h.ready(), []);
    const e = h.events.find((x) => x.type === "model.unloaded");
    assert.ok(e?.type === "model.unloaded" && e.reason === "expired");
  });

  test("keep_alive 0 unloads right after the request; -1 and pins never expire", async () => {
    const h = harness({ a: 100, b: 100, c: 100 });
    await use(h, "a", { keepAliveMs: 0 });
    await use(h, "b", { keepAliveMs: -1 });
    await h.scheduler.load("c", { pinned: true, keepAliveMs: 1000 });
    assert.deepEqual(h.ready(), ["b:latest", "c:latest"]);
    await h.clock.advance(400 * DAY);
    assert.deepEqual(h.ready(), ["b:latest", "c:latest"]);
    assert.equal(h.clock.pending, 0, "no timer armed for models that never expire");
  });

  test("keep-alives past Node's 24.8-day timer limit are kept; absurd ones are capped at 365 days", async () => {
    const h = harness({ a: 100, b: 100 });
    await use(h, "a", { keepAliveMs: 25 * DAY });
    await use(h, "b", { keepAliveMs: 1e300 });
    await h.clock.advance(1000);
    assert.deepEqual(h.ready(), ["a:latest", "b:latest"]);
    const b = (await h.scheduler.ps()).models.find((m) => m.name === "b:latest")!;
    assert.equal(b.expiresAt, new Date(h.clock.now() - 1000 + MAX_KEEP_ALIVE_MS).toISOString());
    await h.clock.advance(25 * DAY);
    assert.deepEqual(h.ready(), ["b:latest"], "a expired after its 25 days");
    await h.clock.advance(MAX_KEEP_ALIVE_MS);
    assert.deepEqual(h.ready(), []);
  });
});

describe("queues", () => {
  test("per-model and total bounds answer queue_full with a Retry-After; timeouts and aborts leave the queue", async () => {
    const h = harness({ a: 100, b: 100 }, { maxQueuePerModel: 2, maxQueueTotal: 3, parallel: 1 });
    const held = await h.scheduler.acquire("a");
    const q1 = h.scheduler.acquire("a", { queueTimeoutMs: 5_000 }).catch((e: unknown) => e);
    const controller = new AbortController();
    const q2 = h.scheduler.acquire("a", { signal: controller.signal }).catch((e: unknown) => e);
    const full = await h.scheduler.acquire("a").catch((e: unknown) => e);
    assert.equal(code(full), "queue_full");
    assert.equal((full as LlmosError).details?.retryAfterSeconds, 1);
    const bHeld = await h.scheduler.acquire("b");
    const qb = h.scheduler.acquire("b").catch((e: unknown) => e);
    assert.equal(code(await h.scheduler.acquire("b").catch((e: unknown) => e)), "queue_full", "3 queued in total");
    controller.abort();
    assert.equal(code(await q2), "client_closed");
    await h.clock.advance(5_000);
    assert.equal(code(await q1), "queue_timeout");
    held.release();
    bHeld.release();
    const lease = (await qb) as { release(): void };
    lease.release();
    const rejected = h.events.flatMap((e) => (e.type === "request.rejected" ? [e.code] : []));
    assert.deepEqual(rejected, ["queue_full", "queue_full", "client_closed", "queue_timeout"]);
  });

  test("a tenant's burst does not starve another tenant; interactive requests go before batch ones", async () => {
    const h = harness({ a: 100 }, { parallel: 1, maxQueuePerModel: 40, maxQueueTotal: 40 });
    const first = await h.scheduler.acquire("a", { tenant: "A" });
    const order: string[] = [];
    const wait = (tenant: string, i: number, priority: "interactive" | "batch" = "interactive") =>
      h.scheduler.acquire("a", { tenant, priority }).then((lease) => {
        order.push(`${tenant}${i}`);
        lease.release();
      });
    const all = [
      wait("batch", 0, "batch"),
      ...Array.from({ length: 10 }, (_, i) => wait("A", i)),
      wait("B", 0),
      wait("B", 1),
    ];
    first.release();
    await Promise.all(all);
    assert.ok(order.indexOf("B1") <= 4, order.join(","));
    assert.equal(order.at(-1), "batch0", "batch last");
  });
});

describe("crash, unload and reload", () => {
  test("a crash fails in-flight requests; queued ones get a fresh runner; other models are untouched", async () => {
    const h = harness({ a: 100, b: 100 }, { parallel: 1 });
    await use(h, "b");
    h.runners.script = () => ({ chunks: ["x"], hold: true });
    const lease = await h.scheduler.acquire("a");
    const generation = lease.handle.generate({ prompt: "x", maxTokens: 4, sampling: {} as never, stop: [] });
    const queued = h.scheduler.acquire("a");
    await settle();
    const [first] = h.runners.live("a:latest");
    first!.crash();
    await generation.result.then(
      () => assert.fail("the in-flight generation must fail"),
      (e: unknown) => assert.equal(code(e), "runner_crashed"),
    );
    lease.release();
    const second = await queued;
    assert.notEqual(second.handle, first, "a fresh runner");
    second.release();
    assert.deepEqual(h.ready(), ["a:latest", "b:latest"]);
    assert.ok(h.events.some((e) => e.type === "model.crashed" && e.model === "a:latest"));
    assert.equal(h.source.leases, 2, "the crashed runner's lease went back");
  });

  test("a runner stopped at its memory limit fails its requests with runner_oom; the next load is sized 1.5x its limit", async () => {
    const h = harness({ a: 100, b: 100 }, { parallel: 1 });
    const live: string[] = [];
    h.metrics.events.subscribe((e) => e.type === "model.unloaded" && live.push(e.data.reason));
    await use(h, "b");
    h.runners.script = () => ({ chunks: ["x"], hold: true });
    const lease = await h.scheduler.acquire("a");
    const generation = lease.handle.generate({ prompt: "x", maxTokens: 4, sampling: {} as never, stop: [] });
    const queued = h.scheduler.acquire("a");
    await settle();
    const [first] = h.runners.live("a:latest");
    assert.equal(first!.resources?.memoryEstimateBytes, 100 * MiB, "the runner is given the estimate");
    const limit = first!.memoryLimitBytes!;
    first!.oomKill();
    await generation.result.then(
      () => assert.fail("the in-flight generation must fail"),
      (e: unknown) => assert.equal(code(e), "runner_oom"),
    );
    lease.release();
    const crashed = h.events.find((e) => e.type === "model.crashed");
    assert.deepEqual(crashed && crashed.type === "model.crashed" && [crashed.cause, crashed.memoryLimitBytes], [
      "oom",
      limit,
    ]);
    const second = await queued;
    second.release();
    const [fresh] = h.runners.live("a:latest");
    assert.equal(fresh!.resources?.memoryEstimateBytes, Math.ceil(limit * 1.5), "the next load gets 1.5x the limit");
    const ps = await h.scheduler.ps();
    assert.deepEqual(
      ps.oomKills?.map((k) => [k.model, k.limitBytes, k.nextEstimateBytes]),
      [["a:latest", limit, Math.ceil(limit * 1.5)]],
    );
    const a = ps.models.find((m) => m.name === "a:latest") as any;
    assert.equal(a.memory.estimatedBytes, Math.ceil(limit * 1.5));
    assert.equal(a.memory.estimate.raisedAfterOom, Math.ceil(limit * 1.5) - 100 * MiB);
    assert.deepEqual(h.runners.live("b:latest").length, 1, "the other model is untouched");
    assert.deepEqual(live, ["oom"], "/api/events says the model went for lack of memory");
  });

  test("an explicit unload drains: the running request finishes, a new one waits and then loads afresh", async () => {
    const h = harness({ a: 100 });
    const running = await h.scheduler.acquire("a");
    const unloaded = h.scheduler.unload("a");
    await settle();
    assert.equal(h.scheduler.snapshot().models[0]?.state, "draining");
    let waitingGranted = false;
    const waiting = h.scheduler.acquire("a").then((l) => ((waitingGranted = true), l));
    await settle();
    assert.equal(waitingGranted, false, "a draining model takes no new request");
    running.release();
    assert.equal(await unloaded, true);
    const lease = await waiting;
    assert.equal(h.runners.started.length, 2, "the waiting request loaded a fresh runner");
    lease.release();
  });

  test("loading with another context drains the model and reloads it with the new settings", async () => {
    const h = harness({ a: 100 });
    await use(h, "a");
    const loaded = await h.scheduler.load("a", { contextSize: 1024 });
    assert.equal(loaded.contextSize, 1024);
    assert.deepEqual(
      h.runners.started.map((r) => r.spec.contextSize / r.spec.slots),
      [512, 1024],
    );
    assert.equal(h.runners.live().length, 1);
  });

  test("a model that fails to load rejects its queued requests with the load's error", async () => {
    const h = harness({});
    assert.equal(code(await h.scheduler.acquire("missing").catch((e: unknown) => e)), "model_not_found");
    assert.deepEqual(h.scheduler.snapshot().models, []);
  });

  test("shutdown turns queued requests away, waits for running ones, and stops every runner", async () => {
    const h = harness({ a: 100, b: 100 }, { parallel: 1 });
    await use(h, "b");
    const running = await h.scheduler.acquire("a");
    const queued = h.scheduler.acquire("a").catch((e: unknown) => e);
    const done = h.scheduler.shutdown(60_000);
    assert.equal(code(await queued), "unavailable");
    await settle();
    assert.equal(h.runners.live().length, 2, "the running request holds its runner");
    running.release();
    await done;
    assert.equal(h.runners.live().length, 0);
    assert.equal(code(await h.scheduler.acquire("a").catch((e: unknown) => e)), "unavailable");
  });
});

describe("events and limits", () => {
  test("one request on a cold model: arrived, loading, queued, loaded, started (the runner gets the cores), finished (it goes idle)", async () => {
    const h = harness({ a: 100 });
    await use(h, "a", { tenant: "key:k1" });
    assert.deepEqual(
      h.events.map((e) => e.type),
      [
        "request.arrived",
        "model.loading",
        "request.queued",
        "model.loaded",
        "request.started",
        "model.cpu",
        "request.finished",
        "model.cpu",
      ],
    );
    const started = h.events.find((e) => e.type === "request.started");
    assert.ok(started?.type === "request.started" && started.tenant === "key:k1" && started.model === "a:latest");
  });

  test("a listener that throws does not disturb scheduling", async () => {
    const h = harness({ a: 100 });
    h.scheduler.subscribe(() => {
      throw new Error("listener bug");
    });
    await use(h, "a");
    assert.deepEqual(h.ready(), ["a:latest"]);
  });

  test("setLimits changes the budget and the queue bounds for the next decisions", async () => {
    const h = harness({ a: 400, b: 400 });
    await use(h, "a");
    h.scheduler.setLimits({ memoryBudgetBytes: 500 * MiB });
    await use(h, "b");
    assert.deepEqual(h.ready(), ["b:latest"]);
    h.scheduler.setLimits({ maxQueuePerModel: 0 });
    const lease = await h.scheduler.acquire("b");
    const busy = await h.scheduler.acquire("b");
    assert.equal(code(await h.scheduler.acquire("b").catch((e: unknown) => e)), "queue_full");
    lease.release();
    busy.release();
  });
});

describe("explicit loads", () => {
  test("a load while the model drains waits for it to go, then loads it afresh", async () => {
    const h = harness({ a: 100 });
    const running = await h.scheduler.acquire("a");
    const unloaded = h.scheduler.unload("a");
    await settle();
    const loaded = h.scheduler.load("a");
    await settle();
    running.release();
    assert.equal(await unloaded, true);
    assert.equal((await loaded).state, "ready");
    assert.equal(h.runners.started.length, 2);
    assert.equal(h.runners.live().length, 1);
  });
});
