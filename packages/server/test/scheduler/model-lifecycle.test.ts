import assert from "node:assert/strict";
import { test } from "node:test";
import {
  IllegalTransitionError,
  isTerminal,
  runnerOf,
  transition,
  TRANSITIONS,
  type LifecycleEvent,
  type ModelState,
  type ModelStateKind,
  type Sizing,
} from "../../src/scheduler/model-lifecycle.js";
import type { ModelSpec } from "../../src/scheduler/model-spec.js";
import type { RunnerHandle } from "../../src/runtime/runner-handle.js";

const spec = { name: "m:latest" } as ModelSpec;
const sizing = { slots: 1, contextSize: 256, ramBytes: 1, vramBytes: 0 } as Sizing;
const runner = { pid: 1 } as RunnerHandle;

const events: Record<LifecycleEvent["type"], LifecycleEvent> = {
  sized: { type: "sized", spec, sizing },
  placed: { type: "placed" },
  started: { type: "started", runner },
  fail: { type: "fail", error: new Error("x") },
  drain: { type: "drain", reason: "unload" },
  stop: { type: "stop", reason: "evicted" },
  stopped: { type: "stopped" },
  crash: { type: "crash" },
};

/** One state of each kind, reached by legal transitions from `loading`. */
function states(): Record<ModelStateKind, ModelState> {
  const loading: ModelState = { kind: "loading", since: 0 };
  const placing = transition(loading, events.sized, 1);
  const starting = transition(placing, events.placed, 2);
  const ready = transition(starting, events.started, 3);
  const draining = transition(ready, events.drain, 4);
  const unloading = transition(ready, events.stop, 5);
  return {
    loading,
    placing,
    starting,
    ready,
    draining,
    unloading,
    unloaded: transition(unloading, events.stopped, 6),
    failed: transition(placing, events.fail, 7),
    crashed: transition(ready, events.crash, 8),
  };
}

test("the happy path: loading -> placing -> starting -> ready -> unloading -> unloaded, each state with its fields", () => {
  const s = states();
  assert.equal(s.placing.kind === "placing" && s.placing.spec, spec);
  assert.equal(runnerOf(s.starting), undefined, "no runner before it started");
  assert.equal(runnerOf(s.ready), runner);
  assert.equal(runnerOf(s.draining), runner, "a draining model still has its runner");
  assert.deepEqual(s.unloaded, { kind: "unloaded", since: 6, reason: "evicted" });
  assert.equal(s.ready.since, 3);
});

test("every edge the table lists is taken; every other one throws", () => {
  const s = states();
  for (const [kind, state] of Object.entries(s) as Array<[ModelStateKind, ModelState]>) {
    for (const event of Object.values(events)) {
      const legal = TRANSITIONS[kind].includes(event.type);
      if (legal) assert.doesNotThrow(() => transition(state, event, 9), `${kind} + ${event.type}`);
      else assert.throws(() => transition(state, event, 9), IllegalTransitionError, `${kind} + ${event.type}`);
    }
  }
});

test("unloaded, failed and crashed are terminal", () => {
  const s = states();
  assert.deepEqual(
    (Object.keys(s) as ModelStateKind[]).filter((k) => isTerminal(s[k])),
    ["unloaded", "failed", "crashed"],
  );
});
