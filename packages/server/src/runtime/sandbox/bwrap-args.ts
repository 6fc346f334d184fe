/**
 * The bubblewrap command line of a sandboxed runner (a pure function, unit-tested). What the runner gets:
 *
 * - its own mount, PID, network, IPC, UTS and cgroup namespaces: no network but a loopback of its own, so nothing
 *   on the host's 127.0.0.1 is reachable; it cannot see or signal the daemon's processes; no terminal
 *   (`--new-session`); it dies with the daemon (`--die-with-parent`); no new privileges;
 * - the root file system read-only, with the daemon's home folder (`LLMOS_HOME`: tokens, database, every model),
 *   the daemon user's home, /tmp, /var/tmp and /run hidden behind empty tmpfs mounts, then only what the runner
 *   needs bound back read-only: its model blob, adapters, a CPU backend built here, and the code it runs;
 * - a private writable /tmp (its memory counts against the runner's cgroup), fresh /proc and a minimal /dev, plus
 *   the GPU device nodes when it may use a GPU;
 * - a model-tool worker (quantize, imatrix) also gets one folder of its own bound writable, where it writes its
 *   output and nothing else.
 *
 * Two ways to become an unprivileged process, chosen by who runs the daemon:
 * - the daemon is root (`drop` given): bubblewrap runs privileged, so it reads the model from the root-only home
 *   folder itself, creates the namespaces without a user namespace, and runs the runner through `setpriv`, which
 *   drops to the sandbox user (uid/gid, no groups, empty capability sets, no new privileges). A user namespace is
 *   avoided on purpose: one made by root maps the sandbox user onto root outside, which reads root's files;
 * - the daemon is a normal user: bubblewrap runs unprivileged in a user namespace of its own (`--unshare-user`)
 *   in which no further user namespace may be made (`--disable-userns`); the runner keeps the daemon's uid
 *   outside, with no capabilities.
 *
 * The IPC channel to the daemon is an inherited file descriptor (fd 3, `NODE_CHANNEL_FD`), which bubblewrap passes
 * through untouched: namespaces do not cut file descriptors.
 */
import path from "node:path";

export interface BwrapPlan {
  /** bubblewrap's path. */
  bwrap: string;
  /** Folders hidden behind an empty tmpfs (the daemon's home folder, the user's home, /tmp, ...). */
  hide: string[];
  /** Files and folders bound back read-only at the same path (model blobs, adapters, code, libraries). */
  readOnly: string[];
  /** Folders bound writable at the same path (a tool worker's output folder). */
  writable?: string[];
  /** Device nodes bound at the same path (GPUs); missing ones are skipped. */
  devices: string[];
  /** Where the command starts. */
  cwd: string;
  /** A root daemon's runner drops to this user through setpriv (see the file comment); null: not root. */
  drop: { setpriv: string; uid: number; gid: number } | null;
  /** The command to run inside: the node binary and its arguments. */
  command: string[];
}

/** Folders no runner needs and that may hold other processes' sockets or files. */
export const ALWAYS_HIDDEN = ["/tmp", "/var/tmp", "/run", "/var/run"];

/** True when `child` is `parent` or inside it. */
export function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

type MountOp = { kind: "hide" | "bind" | "bind-rw"; path: string };
/** At the same depth: hide first, then bind back. */
const RANK: Record<MountOp["kind"], number> = { hide: 0, bind: 1, "bind-rw": 2 };

/**
 * The tmpfs and bind mounts in the order they must be made: outer paths first (a hidden folder, then what is bound
 * back inside it, then a folder hidden inside that, ...). A read-only path is bound only when the nearest mount above
 * it hides it (the rest is visible through the read-only root already); a writable one always is.
 */
export function mountOrder(hide: string[], readOnly: string[], writable: string[] = []): MountOp[] {
  const unique = (paths: string[]) => [...new Set(paths.map((p) => path.resolve(p)))];
  const ops: MountOp[] = [
    ...unique(hide)
      .filter((p) => p !== "/")
      .map((p) => ({ kind: "hide" as const, path: p })),
    ...unique(readOnly).map((p) => ({ kind: "bind" as const, path: p })),
    ...unique(writable).map((p) => ({ kind: "bind-rw" as const, path: p })),
  ];
  const depth = (p: string) => p.split("/").length;
  ops.sort((a, b) => depth(a.path) - depth(b.path) || RANK[a.kind] - RANK[b.kind] || a.path.localeCompare(b.path));
  const kept: MountOp[] = [];
  for (const op of ops) {
    const above = kept.filter((k) => isInside(op.path, k.path)).pop();
    if (op.kind !== "bind" || above?.kind === "hide") kept.push(op);
  }
  return kept;
}

/** setpriv's arguments that drop to `drop`'s user for good: no groups, no capabilities, no new privileges. */
export function setprivArgs(drop: { uid: number; gid: number }): string[] {
  return [
    `--reuid=${drop.uid}`,
    `--regid=${drop.gid}`,
    "--clear-groups",
    "--no-new-privs",
    "--inh-caps=-all",
    "--bounding-set=-all",
    "--",
  ];
}

export function bwrapArgs(plan: BwrapPlan): string[] {
  const args = plan.drop
    ? [
        ...["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"],
        // Only what setpriv needs to drop to the sandbox user; it then clears every set.
        ...["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"],
      ]
    : ["--unshare-all", "--unshare-user", "--disable-userns"];
  args.push("--die-with-parent", "--new-session", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev");
  const made = new Set<string>();
  for (const op of mountOrder(plan.hide, plan.readOnly, plan.writable)) {
    if (op.kind === "hide") {
      // /tmp stays a /tmp (sticky, writable by all); the other hidden folders are empty and read-only in effect.
      args.push("--perms", op.path === "/tmp" ? "1777" : "0755", "--tmpfs", op.path);
      made.add(op.path);
      continue;
    }
    // bubblewrap makes missing parents of a mount point private (0700): make them traversable first.
    const parents: string[] = [];
    for (let dir = path.dirname(op.path); !made.has(dir) && dir !== path.dirname(dir); dir = path.dirname(dir))
      parents.unshift(dir);
    for (const dir of parents) {
      args.push("--perms", "0755", "--dir", dir);
      made.add(dir);
    }
    args.push(op.kind === "bind-rw" ? "--bind" : "--ro-bind", op.path, op.path);
  }
  for (const device of plan.devices) args.push("--dev-bind-try", device, device);
  args.push("--chdir", plan.cwd, "--");
  if (plan.drop) args.push(plan.drop.setpriv, ...setprivArgs(plan.drop));
  args.push(...plan.command);
  return args;
}
