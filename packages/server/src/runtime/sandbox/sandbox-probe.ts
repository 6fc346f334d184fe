/**
 * What this machine can do to isolate runners, found once at start-up: bubblewrap and whether its namespaces
 * work here (tried for real, as the user runners will run as), the user a root daemon drops runners to, and which
 * cgroup controllers (v1 or v2) accept runner groups. `GET /api/system` shows the result; the launcher plans
 * every runner from it.
 */
import { execFile } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { SandboxSupport } from "@llmos/protocol";
import { processEnvironment } from "../../config/config.js";
import { ALWAYS_HIDDEN, bwrapArgs } from "./bwrap-args.js";
import { CONTROLLERS, parseCgroupLayout, type CgroupLayout, type Controller } from "./cgroup-layout.js";
import type { ControllerHome } from "./runner-cgroup.js";
import { existingPaths } from "./host-paths.js";

export type SandboxMode = SandboxSupport["mode"];

/** The probe's findings: the wire summary plus what the launcher needs to start runners. */
export interface SandboxProbe {
  support: SandboxSupport;
  /** bubblewrap, when its namespaces work here. */
  bwrap: string | null;
  /** setpriv and the user to drop to, when the daemon is root. */
  drop: { setpriv: string; uid: number; gid: number } | null;
  /** Where runner cgroups are made, per controller that accepts them. */
  cgroupHomes: ControllerHome[];
}

export interface ProbeOptions {
  mode: SandboxMode;
  /** `LLMOS_SANDBOX_USER`: a name or `uid[:gid]`. */
  user: string;
  /** Where to look for bwrap and setpriv: the daemon's PATH (`LlmosConfig.environment`); default this process's. */
  path?: string;
  /** Test seams: where /proc/self's cgroup files are read from. */
  procSelf?: string;
}

function run(
  file: string,
  args: string[],
  timeoutMs = 15_000,
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs }, (error, stdout, stderr) =>
      resolve({ ok: !error, stdout: String(stdout), stderr: String(stderr) }),
    );
  });
}

/** `name` in `envPath` (the daemon's PATH; default this process's) and the usual system folders, or null. */
export function findExecutable(name: string, envPath = processEnvironment().PATH ?? ""): string | null {
  for (const dir of [...envPath.split(":"), "/usr/bin", "/bin", "/usr/sbin", "/sbin"]) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      /* next */
    }
  }
  return null;
}

/** `nobody`, `1000` or `1000:1000` -> uid and gid (names through `id`, so NSS users work too). */
async function resolveUser(user: string): Promise<{ uid: number; gid: number; name: string } | string> {
  const numeric = /^(\d+)(?::(\d+))?$/.exec(user);
  if (numeric) return { uid: Number(numeric[1]), gid: Number(numeric[2] ?? numeric[1]), name: user };
  const [u, g] = await Promise.all([run("id", ["-u", user]), run("id", ["-g", user])]);
  if (!u.ok || !g.ok) return `sandbox user ${user} not found (LLMOS_SANDBOX_USER)`;
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()), name: user };
}

/** Which controllers accept runner groups, each in v1 or v2; why not, for those that do not. */
function cgroupHomes(layout: CgroupLayout, mayChange: boolean): { homes: ControllerHome[]; reasons: string[] } {
  const homes: ControllerHome[] = [];
  const reasons: string[] = [];
  const probeName = `llmos-probe-${process.pid}`;
  const usable = (dir: string, file: string) => {
    const probe = path.join(dir, probeName);
    try {
      mkdirSync(probe);
      try {
        return existsSync(path.join(probe, file));
      } finally {
        rmdirSync(probe);
      }
    } catch {
      return false;
    }
  };
  const v2Controllers = layout.v2 ? readWords(path.join(layout.v2, "cgroup.controllers")) : [];
  const controlFile: Record<Controller, string> = {
    memory: "memory.limit_in_bytes",
    pids: "pids.max",
    cpuset: "cpuset.cpus",
    cpu: "cpu.cfs_quota_us",
  };
  const v2File: Record<Controller, string> = {
    memory: "memory.max",
    pids: "pids.max",
    cpuset: "cpuset.cpus",
    cpu: "cpu.max",
  };
  for (const controller of CONTROLLERS) {
    const v1 = layout.v1[controller];
    if (v1 && usable(v1, controlFile[controller])) {
      homes.push({ controller, version: "v1", parentDir: v1 });
    } else if (layout.v2 && v2Controllers.includes(controller) && enableV2(layout.v2, controller, mayChange)) {
      if (usable(layout.v2, v2File[controller])) homes.push({ controller, version: "v2", parentDir: layout.v2 });
      else reasons.push(`${controller}: cannot make groups in ${layout.v2}`);
    } else {
      reasons.push(
        v1 ? `${controller}: cannot make groups in ${v1}` : `${controller}: no cgroup controller (v1 or v2) here`,
      );
    }
  }
  return { homes, reasons };
}

function readWords(file: string): string[] {
  try {
    return readFileSync(file, "utf8").split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * Enables `controller` for the children of the daemon's v2 group. The kernel refuses while the group itself holds
 * processes ("no internal processes"); when the only one is this daemon, it moves into a leaf group of its own
 * first, as systemd asks of a service with `Delegate=yes`.
 */
function enableV2(group: string, controller: Controller, mayChange: boolean): boolean {
  const control = path.join(group, "cgroup.subtree_control");
  if (readWords(control).includes(controller)) return true;
  if (!mayChange) return false;
  const tryEnable = () => {
    try {
      writeFileSync(control, `+${controller}`);
      return true;
    } catch {
      return false;
    }
  };
  if (tryEnable()) return true;
  const members = readWords(path.join(group, "cgroup.procs")).map(Number);
  if (members.some((pid) => pid !== process.pid)) return false;
  try {
    const leaf = path.join(group, `llmos-daemon-${process.pid}`);
    mkdirSync(leaf, { recursive: true });
    writeFileSync(path.join(leaf, "cgroup.procs"), String(process.pid));
  } catch {
    return false;
  }
  return tryEnable();
}

function cgroupVersion(layout: CgroupLayout): SandboxSupport["cgroup"]["version"] {
  const v1 = Object.keys(layout.v1).length > 0;
  return v1 && layout.v2 ? "hybrid" : v1 ? "v1" : layout.v2 ? "v2" : null;
}

/** Tries the sandbox once, the way runners start: as the runner user, with the same namespaces and mounts. */
async function namespacesWork(
  bwrap: string,
  drop: SandboxProbe["drop"],
): Promise<{ ok: boolean; reason: string | null }> {
  const hide = existingPaths(ALWAYS_HIDDEN);
  const args = bwrapArgs({
    bwrap,
    hide,
    readOnly: [],
    devices: [],
    cwd: "/tmp",
    drop,
    command: ["/bin/sh", "-c", ":"],
  });
  const r = await run(bwrap, args);
  return r.ok
    ? { ok: true, reason: null }
    : { ok: false, reason: `bubblewrap failed here: ${r.stderr.trim() || "no output"}` };
}

export async function probeSandbox(opts: ProbeOptions): Promise<SandboxProbe> {
  const reasons: string[] = [];
  const none = { memory: null, pids: null, cpuset: null, cpu: null };
  if (process.platform !== "linux") {
    const reason = `runner sandboxes need Linux (this is ${process.platform})`;
    return {
      support: {
        mode: opts.mode,
        effective: "none",
        reason,
        bubblewrap: null,
        namespaces: false,
        runAs: null,
        cgroup: { version: null, controllers: none, reason },
      },
      bwrap: null,
      drop: null,
      cgroupHomes: [],
    };
  }
  const bwrapPath = findExecutable("bwrap", opts.path);
  const version = bwrapPath ? (await run(bwrapPath, ["--version"])).stdout.trim().replace(/^bubblewrap\s*/, "") : null;
  let drop: SandboxProbe["drop"] = null;
  let runAs: SandboxSupport["runAs"] = null;
  let namespaces = false;
  if (!bwrapPath) reasons.push("bubblewrap not found (install the bubblewrap package)");
  else {
    let usable = true;
    if (process.getuid?.() === 0) {
      const setpriv = findExecutable("setpriv", opts.path);
      const user = await resolveUser(opts.user);
      if (typeof user === "string") reasons.push(user);
      else if (user.uid === 0) reasons.push("LLMOS_SANDBOX_USER must not be root");
      else if (!setpriv) reasons.push("setpriv not found (util-linux), so runners cannot drop root");
      else {
        drop = { setpriv, uid: user.uid, gid: user.gid };
        runAs = user;
      }
      usable = drop !== null;
    }
    if (usable) {
      const tried = await namespacesWork(bwrapPath, drop);
      namespaces = tried.ok;
      if (tried.reason) reasons.push(tried.reason);
    }
  }
  const procSelf = opts.procSelf ?? "/proc/self";
  let layout: CgroupLayout = { v1: {}, v2: null };
  try {
    layout = parseCgroupLayout(
      readFileSync(path.join(procSelf, "mountinfo"), "utf8"),
      readFileSync(path.join(procSelf, "cgroup"), "utf8"),
    );
  } catch {
    /* no cgroups visible */
  }
  // With the sandbox off nothing is changed (no group moved, no controller enabled): it only reports.
  const { homes, reasons: cgroupReasons } = cgroupHomes(layout, opts.mode !== "off");
  const controllers: SandboxSupport["cgroup"]["controllers"] = { ...none };
  for (const h of homes) controllers[h.controller] = h.version;
  const limits = controllers.memory !== null && controllers.pids !== null;
  const cgroupReason = limits ? null : cgroupReasons.join("; ") || "no cgroup controllers";
  if (cgroupReason) reasons.push(`no runner limits: ${cgroupReason}`);
  const effective: SandboxSupport["effective"] =
    opts.mode === "off" ? "none" : namespaces && limits ? "sandboxed" : namespaces || homes.length ? "partial" : "none";
  return {
    support: {
      mode: opts.mode,
      effective,
      reason: opts.mode === "off" ? "LLMOS_SANDBOX=off" : reasons.length ? reasons.join("; ") : null,
      bubblewrap: bwrapPath ? { path: bwrapPath, version } : null,
      namespaces,
      runAs,
      cgroup: { version: cgroupVersion(layout), controllers, reason: cgroupReason },
    },
    bwrap: namespaces ? bwrapPath : null,
    drop,
    cgroupHomes: homes,
  };
}
