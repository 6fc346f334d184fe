import { Writable } from "node:stream";
import type { LogEvent } from "@llmos/protocol";
import type { EventHub } from "./event-hub.js";

const LEVELS: Record<number, LogEvent["level"]> = {
  10: "trace",
  20: "debug",
  30: "info",
  40: "warn",
  50: "error",
  60: "fatal",
};

/**
 * A log destination that publishes each line as a `log` event for the dashboard's live tail. It receives pino's
 * serialized JSON, so the logger's redaction (keys, tokens) has already been applied; unparsable lines are skipped.
 */
export function logTap(hub: EventHub): Writable {
  return new Writable({
    write(chunk, _encoding, callback) {
      for (const line of String(chunk).split("\n")) {
        if (!line) continue;
        try {
          const {
            level,
            time,
            msg,
            svc: _svc,
            pid: _pid,
            hostname: _host,
            ...fields
          } = JSON.parse(line) as Record<string, unknown>;
          hub.publish("log", {
            time: typeof time === "number" ? time : Date.now(),
            level: LEVELS[level as number] ?? "info",
            msg: typeof msg === "string" ? msg : "",
            fields,
          });
        } catch {
          /* not a JSON line */
        }
      }
      callback();
    },
  });
}
