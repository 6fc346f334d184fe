import { readdirSync, readFileSync } from "node:fs";

/**
 * Live processes of a process group (Linux /proc; zombies, which are dead and only wait to be reaped, are left out),
 * as `pid:command`. A runner leads its own group, so its pid names the group of everything it forked.
 */
export function liveGroupMembers(pgid: number): string[] {
  const out: string[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ")".
    const close = stat.lastIndexOf(")");
    const [state, , pgrp] = stat.slice(close + 2).split(" ");
    if (Number(pgrp) === pgid && state !== "Z") out.push(`${entry}:${stat.slice(stat.indexOf("(") + 1, close)}`);
  }
  return out;
}

/**
 * Live processes of a runner (as `pid:command`): its process group, its descendants, and their process groups. A
 * sandboxed runner's pid is its sandbox's (bubblewrap), whose runner inside starts a session and group of its own;
 * what that runner forks is in its group and, while the sandbox lives, among the descendants.
 */
export function liveRunnerProcesses(pid: number): string[] {
  const procs: Array<{ pid: number; ppid: number; pgrp: number; name: string }> = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue;
    }
    const close = stat.lastIndexOf(")");
    const [state, ppid, pgrp] = stat.slice(close + 2).split(" ");
    if (state === "Z") continue;
    procs.push({
      pid: Number(entry),
      ppid: Number(ppid),
      pgrp: Number(pgrp),
      name: stat.slice(stat.indexOf("(") + 1, close),
    });
  }
  const family = new Set([pid]);
  for (let grown = true; grown;) {
    grown = false;
    for (const p of procs)
      if (!family.has(p.pid) && (family.has(p.ppid) || family.has(p.pgrp))) {
        family.add(p.pid);
        grown = true;
      }
  }
  return procs.filter((p) => family.has(p.pid) || family.has(p.pgrp)).map((p) => `${p.pid}:${p.name}`);
}

/** Polls `fn` every 50 ms until it returns something other than undefined, or fails after `ms`. */
export async function waitFor<T>(
  fn: () => T | undefined | Promise<T | undefined>,
  ms = 20_000,
  what = "condition",
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
