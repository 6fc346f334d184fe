/** The background build's start-up decision, as a pure function (the daemon-level test drives the real flow). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { CpuBackendBuildStatus } from "@llmos/protocol";
import { decideAutoBuild, type AutoBuildInput } from "../../src/runtime/cpu-backend-autobuild.js";

/** The decision, which must be a reported state rather than a build. */
function reported(input: AutoBuildInput): CpuBackendBuildStatus {
  const d = decideAutoBuild(input);
  if (d === "build") throw new assert.AssertionError({ message: "expected a state, got a build" });
  return d;
}

const base: AutoBuildInput = {
  setting: "auto",
  notApplicable: null,
  installed: { usable: false, reason: "no manifest", key: "v0.4.0+abc" },
  missingTool: null,
  failure: null,
};

describe("decideAutoBuild", () => {
  test("a new install with the tools builds", () => {
    assert.equal(decideAutoBuild(base), "build");
  });

  test("a matching build installed: ready, nothing to do", () => {
    assert.equal(reported({ ...base, installed: { usable: true, reason: null, key: "v0.4.0+abc" } }).state, "ready");
  });

  test("a stale build (other libraries) is rebuilt", () => {
    assert.equal(
      decideAutoBuild({ ...base, installed: { usable: false, reason: "built for v0.3.0", key: "v0.4.0+abc" } }),
      "build",
    );
  });

  test("a failure recorded for these libraries is not retried; for other libraries it is", () => {
    const failure = { key: "v0.4.0+abc", error: "cmake exited with 2\nlong output", at: "2026-01-01T00:00:00.000Z" };
    const d = reported({ ...base, failure });
    assert.equal(d.state, "failed");
    assert.match(d.message, /cmake exited with 2\)/);
    assert.ok(!d.message.includes("long output"));
    assert.equal(decideAutoBuild({ ...base, failure: { ...failure, key: "v0.3.0+def" } }), "build");
  });

  test("missing tools: the hint, naming the missing tool", () => {
    const d = reported({ ...base, missingTool: "cmake" });
    assert.equal(d.state, "unavailable");
    assert.match(d.message, /llmos build-cpu-backend.*cmake is missing/);
  });

  test("the setting off: the hint only; not applicable: off with the reason", () => {
    const off = reported({ ...base, setting: "off" });
    assert.equal(off.state, "off");
    assert.match(off.message, /llmos build-cpu-backend/);
    assert.deepEqual(decideAutoBuild({ ...base, notApplicable: "LLMOS_CPU_BACKEND is shipped" }), {
      state: "off",
      message: "LLMOS_CPU_BACKEND is shipped",
    });
  });
});
