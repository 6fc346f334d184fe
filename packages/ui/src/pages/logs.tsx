import { useState } from "preact/hooks";
import type { LogEvent } from "@llmos/protocol";
import { time } from "../format";
import { logs, snapshot } from "../live";

const LEVELS: LogEvent["level"][] = ["trace", "debug", "info", "warn", "error", "fatal"];

/** The daemon's log lines as they are written (admins), filtered by level. Lines are shown as text. */
export function Logs() {
  const [min, setMin] = useState<LogEvent["level"]>("info");
  if (snapshot.value && !snapshot.value.access.admin)
    return <p class="muted">The log tail needs an admin key or the admin token.</p>;
  const floor = LEVELS.indexOf(min);
  const shown = logs.value.filter((l) => LEVELS.indexOf(l.level) >= floor).slice(-300);
  return (
    <section>
      <label>
        Level at least{" "}
        <select value={min} onChange={(e) => setMin(e.currentTarget.value as LogEvent["level"])} aria-label="level">
          {LEVELS.map((l) => (
            <option key={l} value={l}>
              {l}
            </option>
          ))}
        </select>
      </label>
      <pre class="logs" data-testid="logs">
        {shown.map((l, i) => (
          <div key={i} class={`log-${l.level}`}>
            {time(l.time)} {l.level.toUpperCase().padEnd(5)} {l.msg}{" "}
            {Object.keys(l.fields).length ? JSON.stringify(l.fields) : ""}
          </div>
        ))}
      </pre>
    </section>
  );
}
