import type { DaemonSnapshot } from "llmos";
import { formatBytes, formatSpan, formatThreads, renderTable } from "./format.js";

/** The screen of `llmos top` for one snapshot: a pure function, so it is tested without a terminal. */
export function renderTop(s: DaemonSnapshot, now = Date.now()): string {
  const p = s.point;
  const b = s.node.budget;
  const ms = (sec: number | null) => (sec === null ? "-" : `${Math.round(sec * 1000)} ms`);
  const lines = [
    `llmos ${s.version}   ${new Date(s.time).toLocaleTimeString("en-GB", { hour12: false })}   press q to quit`,
    "",
    `tokens/s ${p.tokensPerSecond.toFixed(1)}   running ${p.running}   queued ${p.queued}   ` +
      `TTFT p50 ${ms(p.ttftP50)} p95 ${ms(p.ttftP95)}   errors ${(p.errorRate * 100).toFixed(1)}%`,
    `memory: models ${formatBytes(b.reservedBytes)} of ${formatBytes(b.budgetBytes)} budget   ` +
      `RAM available ${formatBytes(s.node.memory.availableBytes)} of ${formatBytes(s.node.memory.totalBytes)}   ` +
      `CPU ${(p.cpuBusy * 100).toFixed(0)}% of ${s.node.cpu.cores} cores`,
    "",
  ];
  lines.push(
    s.models.length === 0
      ? "no model loaded"
      : renderTable(
          ["MODEL", "STATE", "MEMORY", "SLOTS", "QUEUED", "THREADS", "CONTEXT", "UNTIL"],
          s.models.map((m) => [
            m.name + (m.pinned ? " (pinned)" : ""),
            m.state,
            formatBytes(m.memory.rssBytes ?? m.memory.estimatedBytes),
            `${m.slotsBusy}/${m.slots}`,
            m.queued,
            formatThreads(m.cpu),
            m.contextSize,
            m.pinned || !m.expiresAt ? "-" : formatSpan(Date.parse(m.expiresAt) - now),
          ]),
        ),
  );
  if (s.requests.length > 0) {
    lines.push("");
    lines.push(
      renderTable(
        ["REQUEST", "MODEL", "STATE", "KEY", "TOKENS", "AGE"],
        s.requests
          .slice(0, 20)
          .map((r) => [r.id, r.model, r.state, r.keyName ?? "-", r.tokens, formatSpan(now - r.arrivedAt)]),
      ),
    );
  }
  return lines.join("\n");
}
