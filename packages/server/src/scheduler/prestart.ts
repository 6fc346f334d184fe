/**
 * Whether to keep a runner started ahead of the next load (runtime/prestarted-runner.ts), as a pure function over
 * the snapshot. It lives only in memory the budget has free: its process counts as the next load's runner
 * overhead (the load takes it, and the load's reservation already holds that overhead), so while one is kept the
 * models and jobs plus it stay within the budget. It is started only while no load is under way and no runner is
 * busy (its start takes a core for about 130 ms, which a decode step already under way with every core would
 * spin-wait for), and stopped when the free memory falls below it, unless a load under way may take it.
 */
import { freeBudgetBytes, type SchedulerSnapshot } from "./snapshot.js";

/** `start`: keep one (start it if there is none); `stop`: keep none; `leave`: change nothing now. */
export type PrestartDecision = "start" | "stop" | "leave";

export function decidePrestart(snapshot: SchedulerSnapshot, closing: boolean): PrestartDecision {
  const p = snapshot.prestart;
  if (!p || closing) return "stop";
  const loading = snapshot.models.some((m) => m.state === "loading" || m.state === "placing" || m.state === "starting");
  const fits = freeBudgetBytes(snapshot) >= p.bytes;
  if (loading) return "leave";
  if (!fits) return "stop";
  const busy = snapshot.models.some((m) => m.busy > 0 || m.queued > 0);
  return busy && p.state === "none" ? "leave" : "start";
}
