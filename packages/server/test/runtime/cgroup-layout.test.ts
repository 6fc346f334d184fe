/** Where this process's cgroups are, on the machine shapes there are: v1/v2 hybrid, pure v2, a container's view. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseCgroupLayout, parseCgroupMounts } from "../../src/runtime/sandbox/cgroup-layout.js";

// This project's machines: v1 controllers plus a v2 hierarchy without controllers (/sys/fs/cgroup/unified).
const HYBRID_MOUNTS = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`;
const HYBRID_SELF = `9:name=systemd:/
8:pids:/
4:memory:/process_api/2d19
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/`;

describe("cgroup layout", () => {
  test("hybrid: each controller in its v1 hierarchy, at this process's group; the v2 hierarchy beside them", () => {
    const layout = parseCgroupLayout(HYBRID_MOUNTS, HYBRID_SELF);
    assert.deepEqual(layout.v1, {
      memory: "/sys/fs/cgroup/memory/process_api/2d19",
      pids: "/sys/fs/cgroup/pids",
      cpuset: "/sys/fs/cgroup/cpuset",
      cpu: "/sys/fs/cgroup/cpu",
    });
    assert.equal(layout.v2, "/sys/fs/cgroup/unified");
  });

  test("pure v2 (systemd): one hierarchy, the service's group", () => {
    const layout = parseCgroupLayout(
      "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate",
      "0::/system.slice/llmos.service\n",
    );
    assert.deepEqual(layout, { v1: {}, v2: "/sys/fs/cgroup/system.slice/llmos.service" });
  });

  test("a container's mount shows its own subtree; co-mounted v1 controllers share one folder", () => {
    const mounts = `500 400 0:40 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct
501 400 0:41 /docker/abc /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory`;
    const self = "5:cpu,cpuacct:/docker/abc/inner\n4:memory:/elsewhere\n";
    const layout = parseCgroupLayout(mounts, self);
    assert.equal(layout.v1.cpu, "/sys/fs/cgroup/cpu,cpuacct/inner");
    assert.equal(layout.v1.memory, undefined, "a group outside the mount's root is not reachable");
    assert.equal(layout.v2, null);
  });

  test("escaped mount points are decoded; other file systems are ignored", () => {
    const mounts = parseCgroupMounts(
      "1 0 0:1 / /my\\040cgroups rw - cgroup2 cgroup2 rw\n2 0 8:1 / / rw - ext4 /dev/sda1 rw",
    );
    assert.deepEqual(mounts, [{ mountPoint: "/my cgroups", root: "/", controllers: [], version: 2 }]);
  });
});
