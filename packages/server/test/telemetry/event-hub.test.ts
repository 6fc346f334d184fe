import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { DaemonEvent } from "@llmos/protocol";
import { EventHub } from "../../src/telemetry/event-hub.js";
import { RequestTracker } from "../../src/telemetry/request-tracker.js";

describe("event hub", () => {
  it("numbers events in order and replays what came after Last-Event-ID", () => {
    const hub = new EventHub(10);
    for (let i = 0; i < 5; i++) hub.publish("model.loading", { model: `m${i}` });
    const seen: DaemonEvent[] = [];
    const sub = hub.subscribe((e) => seen.push(e), 3);
    assert.deepEqual(
      sub.replay.map((e) => e.id),
      [4, 5],
    );
    assert.equal(sub.gap, false);
    hub.publish("model.unloaded", { model: "m0", reason: "test" });
    assert.deepEqual(
      seen.map((e) => [e.id, e.type]),
      [[6, "model.unloaded"]],
    );
    sub.close();
    hub.publish("model.loading", { model: "x" });
    assert.equal(seen.length, 1, "a closed subscription hears nothing");
  });

  it("says when the events after Last-Event-ID are no longer buffered", () => {
    const hub = new EventHub(4);
    for (let i = 0; i < 20; i++) hub.publish("model.loading", { model: `m${i}` });
    const sub = hub.subscribe(() => undefined, 2);
    assert.equal(sub.gap, true);
    assert.ok(sub.replay.length >= 4 && sub.replay.length <= 5);
    assert.equal(sub.replay.at(-1)!.id, 20);
    assert.equal(hub.subscribe(() => undefined, 20).replay.length, 0, "nothing missed");
  });

  it("keeps a throwing subscriber from hurting the publisher and the others", () => {
    const hub = new EventHub();
    const seen: number[] = [];
    hub.subscribe(() => {
      throw new Error("bad subscriber");
    });
    hub.subscribe((e) => seen.push(e.id));
    hub.publish("model.loading", { model: "m" });
    assert.deepEqual(seen, [1]);
  });
});

describe("request tracker", () => {
  it("publishes queued, started and finished, and keeps the running count per model", () => {
    const hub = new EventHub();
    const running = new Map<string, number>();
    const tracker = new RequestTracker(hub, (model, d) => running.set(model, (running.get(model) ?? 0) + d));
    const types: string[] = [];
    hub.subscribe((e) => types.push(e.type));
    const t = tracker.track({ requestModel: "m", model: "m:latest", kind: "chat" });
    assert.equal(tracker.list()[0]!.state, "queued");
    t.started();
    assert.equal(running.get("m:latest"), 1);
    t.tokens(3, "abc");
    assert.equal(tracker.list()[0]!.tokens, 3);
    t.finish({ outcome: "ok", promptTokens: 4, completionTokens: 3, finishReason: "stop" });
    t.finish({ outcome: "ok", promptTokens: 4, completionTokens: 3, finishReason: "stop" });
    assert.equal(running.get("m:latest"), 0);
    assert.deepEqual(types, ["request.queued", "request.started", "request.finished"]);
    assert.equal(tracker.list().length, 0);
  });

  it("cancels through its own signal, and follows the caller's signal", () => {
    const tracker = new RequestTracker(new EventHub(), () => undefined);
    const a = tracker.track({ requestModel: "m", model: "m", kind: "completion" });
    tracker.get(a.info.id)!.cancel();
    assert.equal(a.signal.aborted, true);
    const client = new AbortController();
    const b = tracker.track({ requestModel: "m", model: "m", kind: "completion", signal: client.signal });
    assert.equal(b.signal.aborted, false);
    client.abort();
    assert.equal(b.signal.aborted, true);
  });
});
