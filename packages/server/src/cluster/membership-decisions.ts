/**
 * Who is alive (pure decisions over the node table, tested with hand-written rows):
 * - a node whose database session ended (its advisory lock is gone) is dead: the database saw the connection close
 *   (`kill -9`, a crash, a lost network); this evidence is never in doubt;
 * - a node whose heartbeat is older than the dead-after interval is dead too, unless more than half of the nodes
 *   look that way at once: then the fault is more likely the database or this node's view than the nodes, and
 *   marking them all dead would move every model at once (the rescheduling storm operators of other systems
 *   complain about); they stay as they are, unhealthy (not routed to), until heartbeats resume or their sessions end;
 * - a node with a heartbeat older than twice the heartbeat interval is suspect: alive, but not routed to.
 */
import type { ClusterNodeState } from "@llmos/protocol";

export interface MemberRow {
  name: string;
  state: ClusterNodeState;
  epoch: number;
  heartbeatAgeMs: number;
  lockHeld: boolean;
}

export interface DeathDecision {
  /** Nodes to mark dead, with the epoch seen (the update only applies if it is still that one). */
  dead: Array<{ name: string; epoch: number; why: "session_ended" | "heartbeat_timeout" }>;
  /** Nodes whose heartbeat timed out but are kept because more than half of the nodes look unhealthy. */
  held: string[];
}

export interface MembershipTimes {
  heartbeatMs: number;
  deadAfterMs: number;
}

function isMember(state: ClusterNodeState): boolean {
  return state === "up" || state === "draining";
}

export function decideDeaths(rows: readonly MemberRow[], times: MembershipTimes, self: string): DeathDecision {
  const members = rows.filter((r) => isMember(r.state));
  const dead: DeathDecision["dead"] = [];
  const timedOut: MemberRow[] = [];
  for (const r of members) {
    if (r.name === self) continue; // this node is alive: it is deciding (its own lapse is found by its heartbeat)
    if (!r.lockHeld) dead.push({ name: r.name, epoch: r.epoch, why: "session_ended" });
    else if (r.heartbeatAgeMs > times.deadAfterMs) timedOut.push(r);
  }
  // Sessions that ended are dead whatever else happens; heartbeats alone are trusted only while most look fine.
  const unhealthy = dead.length + timedOut.length;
  if (timedOut.length > 0 && unhealthy * 2 > members.length) return { dead, held: timedOut.map((r) => r.name) };
  for (const r of timedOut) dead.push({ name: r.name, epoch: r.epoch, why: "heartbeat_timeout" });
  return { dead, held: [] };
}

/** Routed to: a member (up or draining) whose session lives and whose heartbeat is recent. */
export function isHealthy(row: MemberRow, times: MembershipTimes): boolean {
  return isMember(row.state) && row.lockHeld && row.heartbeatAgeMs <= 2 * times.heartbeatMs + 250;
}
