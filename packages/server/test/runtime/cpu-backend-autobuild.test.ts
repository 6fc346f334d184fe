/** The background build's start-up decision, as a pure function (the daemon-level test drives the real flow). */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { decideAutoBuild, type AutoBuildInput } from "../../src/runtime/cpu-backend-autobuild.js";

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
    const d = decideAutoBuild({ ...base, installed: { usable: true, reason: null, key: "v0.4.0+abc" } });
    assert.notEqual(d, "build");
    assert.equal(d !== "build" && d.state, "ready");
  });

  test("a stale build (other libraries) is rebuilt", () => {
    assert.equal(
      decideAutoBuild({ ...base, installed: { usable: false, reason: "built for v0.3.0", key: "v0.4.0+abc" } }),
      "build",
    );
  });

  test("a failure recorded for these libraries is not retried; for other libraries it is", () => {
    const failure = { key: "v0.4.0+abc", error: "cmake exited with 2\nlong output", at: "2026-01-01T00:00:00.000Z" };
    const d = decideAutoBuild({ ...base, failure });
    assert.ok(d !== "build" && d.state === "failed");
    assert.ok(d !== "build" && /cmake exited with 2\)/.test(d.message) && !d.message.includes("long output"));
    assert.equal(decideAutoBuild({ ...base, failure: { ...failure, key: "v0.3.0+def" } }), "build");
  });

  test("missing tools: the hint, naming the missing tool", () => {
    const d = decideAutoBuild({ ...base, missingTool: "cmake" });
    assert.ok(d !== "build" && d.state === "unavailable");
    assert.ok(d !== "build" && /llmos build-cpu-backend.*cmake is missing/.test(d.message));
  });

  test("the setting off: the hint only; not applicable: off with the reason", () => {
    const off = decideAutoBuild({ ...base, setting: "off" });
    assert.ok(off !== "build" && off.state === "off" && /llmos build-cpu-backend/.test(off.message));
    assert.deepEqual(decideAutoBuild({ ...base, notApplicable: "LLMOS_CPU_BACKEND is shipped" }), {
      state: "off",
      message: "LLMOS_CPU_BACKEND is shipped",
    });
  });
});
