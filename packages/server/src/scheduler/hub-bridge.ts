import type { EventHub } from "../telemetry/event-hub.js";
import type { SchedulerListener } from "./events.js";

/**
 * Publishes the scheduler's model events on the daemon's event hub (`GET /api/events`) in its wire shape
 * (@llmos/protocol `DaemonEventMap`). A crash is an unload with reason `crashed` there (`oom` when the kernel
 * stopped the runner at its memory limit). Request events reach the
 * hub from the request tracker (inference), which also knows keys and tokens.
 */
export function publishModelEvents(hub: EventHub): SchedulerListener {
  return (e) => {
    switch (e.type) {
      case "model.loading":
        return hub.publish("model.loading", { model: e.model, ...(e.prewarm ? { prewarm: true } : {}) });
      case "model.loaded":
        return hub.publish("model.loaded", {
          model: e.model,
          loadMs: e.loadMs,
          estimateBytes: e.estimateBytes,
          rssBytes: e.rssBytes,
        });
      case "model.load_failed":
        return hub.publish("model.load_failed", { model: e.model, error: e.message });
      case "model.unloaded":
        return hub.publish("model.unloaded", { model: e.model, reason: e.reason });
      case "model.crashed":
        return hub.publish("model.unloaded", { model: e.model, reason: e.cause === "oom" ? "oom" : "crashed" });
    }
  };
}
