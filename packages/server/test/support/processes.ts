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
