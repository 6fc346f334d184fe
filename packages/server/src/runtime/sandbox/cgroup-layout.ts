/**
 * Where this process's cgroups are: which controllers are mounted as cgroup v1 hierarchies, where the v2 (unified)
 * hierarchy is, and the folder of this process's own group in each. Pure parsing of `/proc/self/mountinfo` and
 * `/proc/self/cgroup`, so it is unit-tested on the shapes real machines have: pure v1, pure v2, and the v1/v2
 * hybrid (v1 controllers under /sys/fs/cgroup/<name>, a v2 hierarchy at /sys/fs/cgroup/unified).
 */
import path from "node:path";

/** The controllers runner limits use. */
export const CONTROLLERS = ["memory", "pids", "cpuset", "cpu"] as const;
export type Controller = (typeof CONTROLLERS)[number];

export interface CgroupLayout {
  /** For each controller mounted as a v1 hierarchy: the folder of this process's group in it. */
  v1: Partial<Record<Controller, string>>;
  /** The v2 hierarchy: the folder of this process's group in it, or null when none is mounted (or reachable). */
  v2: string | null;
}

interface CgroupMount {
  /** Mount point, e.g. /sys/fs/cgroup/memory. */
  mountPoint: string;
  /** The hierarchy's folder this mount shows (not `/` inside some containers). */
  root: string;
  /** v1: the controllers of the hierarchy (`memory`, `cpu`, `cpuacct`, ...); v2: empty. */
  controllers: string[];
  version: 1 | 2;
}

/** Mountinfo escapes spaces and a few other characters as octal (`\040`). */
function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The cgroup mounts in `/proc/self/mountinfo` text. */
export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of mountinfo.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const before = line.slice(0, sep).split(" ");
    const after = line.slice(sep + 3).split(" ");
    const fsType = after[0];
    if (fsType !== "cgroup" && fsType !== "cgroup2") continue;
    const root = unescapeMountPath(before[3] ?? "/");
    const mountPoint = unescapeMountPath(before[4] ?? "");
    if (!mountPoint) continue;
    const superOptions = (after[2] ?? "").split(",");
    mounts.push({
      mountPoint,
      root,
      controllers: fsType === "cgroup" ? superOptions.filter((o) => o !== "rw" && o !== "ro" && !o.includes("=")) : [],
      version: fsType === "cgroup" ? 1 : 2,
    });
  }
  return mounts;
}

/** `/proc/self/cgroup` lines: `4:memory:/a/b` (v1: id, controllers, path) and `0::/a/b` (v2). */
export function parseProcCgroup(text: string): { v1: Map<string, string>; v2: string | null } {
  const v1 = new Map<string, string>();
  let v2: string | null = null;
  for (const line of text.split("\n")) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    const [, id, controllers, groupPath] = m;
    if (id === "0" && controllers === "") v2 = groupPath!;
    else for (const c of controllers!.split(",")) if (c) v1.set(c, groupPath!);
  }
  return { v1, v2 };
}

/** The folder of group `groupPath` under `mount`, or null when the mount does not show it (another container's). */
function groupFolder(mount: CgroupMount, groupPath: string): string | null {
  const rel = path.posix.relative(mount.root, groupPath);
  if (rel.startsWith("..")) return null;
  return path.posix.join(mount.mountPoint, rel);
}

/** This process's cgroup folders, from `/proc/self/mountinfo` and `/proc/self/cgroup` text. */
export function parseCgroupLayout(mountinfo: string, procCgroup: string): CgroupLayout {
  const mounts = parseCgroupMounts(mountinfo);
  const own = parseProcCgroup(procCgroup);
  const layout: CgroupLayout = { v1: {}, v2: null };
  for (const controller of CONTROLLERS) {
    const mount = mounts.find((m) => m.version === 1 && m.controllers.includes(controller));
    const groupPath = own.v1.get(controller);
    if (!mount || groupPath === undefined) continue;
    const folder = groupFolder(mount, groupPath);
    if (folder) layout.v1[controller] = folder;
  }
  const unified = mounts.find((m) => m.version === 2);
  if (unified && own.v2 !== null) layout.v2 = groupFolder(unified, own.v2);
  return layout;
}
