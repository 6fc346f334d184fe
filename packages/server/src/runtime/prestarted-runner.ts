/**
 * One runner started ahead of the next load: its process spawned (in its sandbox and cgroup) and its engine up,
 * with no model. A cold load spends most of its time there on small models (about 60 ms to spawn node and 50 ms to
 * import and start the engine, against 60-80 ms to load a 42M model: docs/keep-alive.md), so a load that finds
 * it ready only loads its weights. The scheduler decides when one is kept (scheduler/prestart.ts: only in memory
 * the budget has free); this holder starts it, hands it to the next load whose engine part matches, and stops it.
 */
import type { RunnerEngineSpec } from "../runner/ipc-protocol.js";
import type { ChildProcessRunner } from "./child-process-runner.js";
import type { PrestartedState } from "./runner-handle.js";

interface Held {
  key: string;
  state: Exclude<PrestartedState, "none">;
  /** Set once its process is spawned. */
  runner: ChildProcessRunner | undefined;
  /** Settles true once its engine is up, false when it failed or exited first. */
  ready: Promise<boolean>;
  /** Given to a load. */
  taken: boolean;
  /** Stopped before it was taken. */
  stopped: boolean;
}

export class PrestartedRunner {
  private held: Held | null = null;
  private readonly listeners = new Set<() => void>();
  /**
   * The engine whose prestarted runner failed to start or exited before a load took it: not started again until
   * a load has run (which starts its own runner and shows whether the cause is gone), so a failing start never
   * loops.
   */
  private failedKey: string | null = null;
  /** How long the last one took from its spawn to its engine up, ms (null: none came up yet). */
  private lastStartMs: number | null = null;

  /**
   * `spawn` starts a runner for `engine` (process only: this holder prepares it); `failed` hears why one did not
   * come up.
   */
  constructor(
    private readonly spawn: (engine: RunnerEngineSpec) => Promise<ChildProcessRunner>,
    private readonly failed: (error: unknown) => void,
  ) {}

  /** Keeps one prestarted runner for `engine` (null: none). Starting one is not awaited. */
  keep(engine: RunnerEngineSpec | null): void {
    if (engine === null) {
      this.stop();
      return;
    }
    const key = keyOf(engine);
    if (this.held?.key === key || this.failedKey === key) return;
    this.stop();
    let settle!: (ok: boolean) => void;
    const ready = new Promise<boolean>((resolve) => (settle = resolve));
    const held: Held = { key, state: "starting", runner: undefined, ready, taken: false, stopped: false };
    const spawned = performance.now();
    this.held = held;
    this.changed();
    const gone = (error: unknown) => {
      if (held.taken || held.stopped) return;
      this.failedKey = key;
      this.failed(error);
      if (this.held !== held) return;
      this.held = null;
      this.changed();
    };
    void this.spawn(engine).then(
      async (runner) => {
        held.runner = runner;
        runner.onExit((exit) => {
          settle(false);
          gone(new Error(`exited before a load took it (code ${exit.code}, signal ${exit.signal})`));
        });
        if (held.stopped) {
          void runner.stop();
          settle(false);
          return;
        }
        try {
          await runner.prepare();
        } catch (error) {
          settle(false);
          gone(error);
          return;
        }
        this.lastStartMs = performance.now() - spawned;
        settle(true);
        if (this.held === held) {
          held.state = "ready";
          this.changed();
        }
      },
      (error: unknown) => {
        settle(false);
        gone(error);
      },
    );
  }

  /** None, starting (process and engine coming up: it uses a core), ready, or failed (not started until a load). */
  state(): PrestartedState {
    return this.held?.state ?? (this.failedKey === null ? "none" : "failed");
  }

  /** How long the last prestarted runner took to come up (spawn to engine up), ms; null before the first. */
  startMs(): number | null {
    return this.lastStartMs;
  }

  /**
   * The prestarted runner, for a load with this engine part: waits for it while it is starting (that is sooner
   * than starting another). Null when there is none, it is for another engine, or it failed.
   */
  async take(engine: RunnerEngineSpec): Promise<ChildProcessRunner | null> {
    this.failedKey = null;
    const held = this.held;
    if (!held || held.key !== keyOf(engine)) return null;
    held.taken = true;
    this.held = null;
    this.changed();
    if (!(await held.ready) || !held.runner || held.runner.exited) return null;
    return held.runner;
  }

  /** Calls `listener` when the state changes (the scheduler decides again). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops the prestarted runner, if any. */
  stop(): void {
    const held = this.held;
    if (!held) return;
    held.stopped = true;
    this.held = null;
    // One still spawning is stopped once it has (above).
    if (held.runner) void held.runner.stop();
    this.changed();
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }
}

function keyOf(e: RunnerEngineSpec): string {
  return JSON.stringify([e.engine, e.gpu, e.cpuBackendDir, e.threads]);
}
