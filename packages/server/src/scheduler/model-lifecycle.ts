/**
 * The lifecycle of a model the scheduler holds, as an explicit state machine (diagram in docs/architecture.md):
 *
 *   loading ──sized──► placing ──placed──► starting ──started──► ready ──drain──► draining
 *      │                  │                   │                  │  │                │  │
 *      └──────fail────────┴────────fail───────┴──► failed        │  └─crash──► crashed ◄┘  │
 *                                                                 └──stop──► unloading ◄─stop┘
 *                                                                               └─stopped──► unloaded
 *
 * Each state carries exactly the fields valid in it (the runner exists from `ready` on, the spec and its sizing
 * from `placing` on), so code reads them after narrowing on `kind` instead of asserting. `transition` is the one
 * place states change; it is pure and throws on an edge the diagram does not have.
 */
import type { RunnerHandle } from "../runtime/runner-handle.js";
import type { KvCacheTypes } from "./kv-cache.js";
import type { MemoryEstimate } from "./memory-estimator.js";
import type { ModelSpec } from "./model-spec.js";
import type { OffloadPlan } from "./offload.js";

/** How a model is run: sequences, context per sequence, memory estimate and GPU split (decided before placing). */
export interface Sizing {
  slots: number;
  /** Context tokens per sequence. */
  contextSize: number;
  /** K and V cache element types of the runner's context. */
  kvCacheType: KvCacheTypes;
  /** The daemon's KV cache type does not suit this model's head size: f16 instead. */
  kvCacheFellBack: boolean;
  estimate: MemoryEstimate;
  /** GPU/RAM split (CPU only or GPU not known yet: none). */
  offload: OffloadPlan | undefined;
  /** Bytes charged to the RAM budget (the part not offloaded). */
  ramBytes: number;
  vramBytes: number;
}

/** Why a model left memory. */
export type UnloadReason =
  /** Evicted to make room for another model. */
  | "evicted"
  /** Evicted so that a load that ran out of memory could retry. */
  | "oom_retry"
  /** Its keep-alive ran out (keep_alive 0 included). */
  | "expired"
  /** Asked for: the unload API, or a reload with other settings. */
  | "unload"
  | "shutdown";

interface Placed {
  since: number;
  spec: ModelSpec;
  sizing: Sizing;
}

interface Running extends Placed {
  runner: RunnerHandle;
}

export type ModelState =
  /** Waiting for its turn to load (one load at a time) or for the store to hand out its files. */
  | { kind: "loading"; since: number }
  /** Spec and sizing known; waiting for memory (evicting idle models, or for busy ones to finish). */
  | ({ kind: "placing" } & Placed)
  /** The runner process is starting and loading the model. */
  | ({ kind: "starting" } & Placed)
  /** Serving requests. */
  | ({ kind: "ready" } & Running)
  /** Asked to unload: takes no new requests, unloads when its last one finishes. */
  | ({ kind: "draining"; reason: UnloadReason } & Running)
  /** The runner is stopping. */
  | ({ kind: "unloading"; reason: UnloadReason } & Running)
  /** Terminal: the runner stopped. */
  | { kind: "unloaded"; since: number; reason: UnloadReason }
  /** Terminal: the load failed (`error` is what its waiting requests got). */
  | { kind: "failed"; since: number; error: unknown }
  /** Terminal: the runner exited unexpectedly. */
  | { kind: "crashed"; since: number };

export type ModelStateKind = ModelState["kind"];

export type LifecycleEvent =
  | { type: "sized"; spec: ModelSpec; sizing: Sizing }
  | { type: "placed" }
  | { type: "started"; runner: RunnerHandle }
  | { type: "fail"; error: unknown }
  | { type: "drain"; reason: UnloadReason }
  | { type: "stop"; reason: UnloadReason }
  | { type: "stopped" }
  | { type: "crash" };

/** The edges of the diagram: for each state, the events it accepts. */
export const TRANSITIONS: Readonly<Record<ModelStateKind, readonly LifecycleEvent["type"][]>> = {
  loading: ["sized", "fail"],
  placing: ["placed", "fail"],
  starting: ["started", "fail"],
  ready: ["drain", "stop", "crash"],
  draining: ["stop", "crash"],
  unloading: ["stopped"],
  unloaded: [],
  failed: [],
  crashed: [],
};

export class IllegalTransitionError extends Error {
  override readonly name = "IllegalTransitionError";
  constructor(from: ModelStateKind, event: LifecycleEvent["type"]) {
    super(`a model cannot take "${event}" while ${from}`);
  }
}

/** The state after `event` (pure). @throws IllegalTransitionError for an edge the diagram does not have. */
export function transition(state: ModelState, event: LifecycleEvent, now: number): ModelState {
  const illegal = () => new IllegalTransitionError(state.kind, event.type);
  switch (event.type) {
    case "sized":
      if (state.kind !== "loading") throw illegal();
      return { kind: "placing", since: now, spec: event.spec, sizing: event.sizing };
    case "placed":
      if (state.kind !== "placing") throw illegal();
      return { ...state, kind: "starting", since: now };
    case "started":
      if (state.kind !== "starting") throw illegal();
      return { kind: "ready", since: now, spec: state.spec, sizing: state.sizing, runner: event.runner };
    case "fail":
      if (state.kind !== "loading" && state.kind !== "placing" && state.kind !== "starting") throw illegal();
      return { kind: "failed", since: now, error: event.error };
    case "drain":
      if (state.kind !== "ready") throw illegal();
      return { ...state, kind: "draining", since: now, reason: event.reason };
    case "stop":
      if (state.kind !== "ready" && state.kind !== "draining") throw illegal();
      return { ...state, kind: "unloading", since: now, reason: event.reason };
    case "stopped":
      if (state.kind !== "unloading") throw illegal();
      return { kind: "unloaded", since: now, reason: state.reason };
    case "crash":
      if (state.kind !== "ready" && state.kind !== "draining") throw illegal();
      return { kind: "crashed", since: now };
  }
}

/** The runner of a state that has one (ready, draining, unloading). */
export function runnerOf(state: ModelState): RunnerHandle | undefined {
  return state.kind === "ready" || state.kind === "draining" || state.kind === "unloading" ? state.runner : undefined;
}

/** The sizing of a state that has one (placing on, until the runner is gone). */
export function sizingOf(state: ModelState): Sizing | undefined {
  return "sizing" in state ? state.sizing : undefined;
}

/** The model's files, leased from the store, in the states that hold them. */
export function specOf(state: ModelState): ModelSpec | undefined {
  return "spec" in state ? state.spec : undefined;
}

/** True for the states a model never leaves. */
export function isTerminal(state: ModelState): boolean {
  return TRANSITIONS[state.kind].length === 0;
}
