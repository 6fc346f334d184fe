/**
 * Checks, from the scheduler's events, that no policy broke what users asked for: a pinned model is never unloaded
 * (except by an explicit unload or shutdown), and a model given a keep_alive by a request never expires before
 * that keep-alive has passed since it went idle (memory pressure may still evict it, as documented). The simulator
 * and the replayer feed it the same events.
 */
import type { SchedulerEvent } from "../../src/scheduler/events.js";

/** Slack for timers and event order, ms. */
const TOLERANCE_MS = 5;

export class ViolationChecker {
  readonly violations: string[] = [];
  private readonly pinned: Set<string>;
  private readonly keepAlive = new Map<string, number>();
  private readonly inflight = new Map<string, number>();
  private readonly idleSince = new Map<string, number>();

  constructor(pinned: Iterable<string> = []) {
    this.pinned = new Set(pinned);
  }

  /** A request carrying `keepAliveMs` is about to be sent for `model` (canonical name). */
  expectKeepAlive(model: string, keepAliveMs: number): void {
    this.keepAlive.set(model, keepAliveMs);
  }

  observe(e: SchedulerEvent): void {
    switch (e.type) {
      case "request.arrived":
        this.inflight.set(e.model, (this.inflight.get(e.model) ?? 0) + 1);
        this.idleSince.delete(e.model);
        break;
      case "request.finished":
      case "request.rejected": {
        const n = Math.max(0, (this.inflight.get(e.model) ?? 0) - 1);
        this.inflight.set(e.model, n);
        if (n === 0) this.idleSince.set(e.model, e.at);
        break;
      }
      case "model.loaded":
        if (!this.idleSince.has(e.model) && (this.inflight.get(e.model) ?? 0) === 0) this.idleSince.set(e.model, e.at);
        break;
      case "model.unloading": {
        if (this.pinned.has(e.model) && e.reason !== "unload" && e.reason !== "shutdown")
          this.violations.push(`${new Date(e.at).toISOString()} pinned ${e.model} unloaded (${e.reason})`);
        const ka = this.keepAlive.get(e.model);
        const idle = this.idleSince.get(e.model);
        if (e.reason === "expired" && ka !== undefined && idle !== undefined && e.at < idle + ka - TOLERANCE_MS)
          this.violations.push(
            `${new Date(e.at).toISOString()} ${e.model} expired ${idle + ka - e.at} ms before its keep_alive of ${ka} ms`,
          );
        break;
      }
      case "model.unloaded":
      case "model.crashed":
        // A fresh load of the model starts with the default keep-alive again.
        this.keepAlive.delete(e.model);
        this.idleSince.delete(e.model);
        break;
    }
  }
}
