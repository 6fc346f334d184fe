/** The bubblewrap command line: namespaces, what is hidden and bound back, in which order, and the user drop. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { bwrapArgs, mountOrder, setprivArgs } from "../../src/runtime/sandbox/bwrap-args.js";

const HOME = "/root/.llmos";
const BLOB = `${HOME}/models/blobs/sha256-aa`;

/** The value after each `flag` in `args`. */
function after(args: string[], flag: string, width = 1): string[][] {
  const out: string[][] = [];
  args.forEach((a, i) => a === flag && out.push(args.slice(i + 1, i + 1 + width)));
  return out;
}

describe("bubblewrap arguments", () => {
  test("outer mounts first; a path is bound back only where a hidden folder covers it", () => {
    const ops = mountOrder(
      ["/tmp", HOME, "/root", "/root/app/.home"],
      [BLOB, "/root/app", "/usr/lib/node", "/tmp/x/y"],
    );
    assert.deepEqual(ops, [
      { kind: "hide", path: "/root" },
      { kind: "hide", path: "/tmp" },
      { kind: "hide", path: "/root/.llmos" },
      { kind: "bind", path: "/root/app" },
      { kind: "hide", path: "/root/app/.home" },
      { kind: "bind", path: "/tmp/x/y" },
      { kind: "bind", path: BLOB },
    ]);
  });

  test("a writable folder is always bound, writable, after the hidden folder above it", () => {
    const out = `${HOME}/models/tmp/worker-1`;
    assert.deepEqual(mountOrder([HOME], [BLOB], [out, "/srv/out"]), [
      { kind: "hide", path: HOME },
      { kind: "bind-rw", path: "/srv/out" },
      { kind: "bind", path: BLOB },
      { kind: "bind-rw", path: out },
    ]);
    const args = bwrapArgs({
      bwrap: "/usr/bin/bwrap",
      hide: [HOME],
      readOnly: [BLOB],
      writable: [out],
      devices: [],
      cwd: "/tmp",
      drop: null,
      command: ["node", "worker.js"],
    });
    assert.deepEqual(after(args, "--bind", 2), [[out, out]]);
    assert.deepEqual(after(args, "--ro-bind", 2).at(-1), [BLOB, BLOB]);
    assert.ok(args.indexOf(out) > args.indexOf(HOME), "bound after the home is hidden, so it shows through");
  });

  test("a root daemon: no user namespace, setpriv drops to the sandbox user inside, with only its capabilities", () => {
    const args = bwrapArgs({
      bwrap: "/usr/bin/bwrap",
      hide: ["/tmp", HOME],
      readOnly: [BLOB],
      devices: [],
      cwd: "/tmp",
      drop: { setpriv: "/usr/bin/setpriv", uid: 65534, gid: 65534 },
      command: ["/usr/bin/node", "/app/runner/main.js"],
    });
    assert.ok(!args.includes("--unshare-user") && !args.includes("--unshare-all"));
    for (const ns of ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"])
      assert.ok(args.includes(ns), ns);
    assert.deepEqual(after(args, "--cap-add").flat(), ["CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"]);
    assert.deepEqual(after(args, "--ro-bind", 2), [
      ["/", "/"],
      [BLOB, BLOB],
    ]);
    assert.deepEqual(after(args, "--tmpfs").flat(), ["/tmp", HOME]);
    // The blob's parents inside the hidden home are made traversable before it is bound.
    assert.deepEqual(after(args, "--dir").flat(), [`${HOME}/models`, `${HOME}/models/blobs`]);
    const sep = args.indexOf("--");
    assert.deepEqual(args.slice(sep + 1), [
      "/usr/bin/setpriv",
      ...setprivArgs({ uid: 65534, gid: 65534 }),
      "/usr/bin/node",
      "/app/runner/main.js",
    ]);
    assert.deepEqual(setprivArgs({ uid: 65534, gid: 65534 }).slice(0, 2), ["--reuid=65534", "--regid=65534"]);
  });

  test("a normal user's daemon: a user namespace of its own in which no further one may be made", () => {
    const args = bwrapArgs({
      bwrap: "bwrap",
      hide: ["/tmp"],
      readOnly: [],
      devices: ["/dev/nvidia0"],
      cwd: "/srv/llmos",
      drop: null,
      command: ["node", "main.js"],
    });
    assert.deepEqual(args.slice(0, 3), ["--unshare-all", "--unshare-user", "--disable-userns"]);
    assert.ok(args.includes("--die-with-parent") && args.includes("--new-session"));
    assert.deepEqual(after(args, "--dev-bind-try", 2), [["/dev/nvidia0", "/dev/nvidia0"]]);
    assert.deepEqual(after(args, "--chdir"), [["/srv/llmos"]]);
    assert.deepEqual(args.slice(args.indexOf("--") + 1), ["node", "main.js"]);
    // /tmp is a /tmp: sticky and writable by all.
    const tmp = args.indexOf("/tmp");
    assert.deepEqual(args.slice(tmp - 3, tmp), ["--perms", "1777", "--tmpfs"]);
  });
});
