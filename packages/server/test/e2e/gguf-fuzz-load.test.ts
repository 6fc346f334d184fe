import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { mutateGguf, parseGgufBuffer, validateModelMetadata } from "@llmos/gguf";
import { STORIES } from "../support/paths.js";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";

/**
 * Mutated GGUF files that the validator accepts are imported and loaded by real runners: none may crash a runner
 * (llama.cpp aborts the whole process on some bad values: the validator must have refused those). The daemon's
 * import must agree with the validator. Seed and sample size: LLMOS_GGUF_LOAD_SEED, LLMOS_GGUF_LOAD_SAMPLE.
 */
describe("accepted GGUF mutants through a real load", () => {
  let d: TestDaemon;
  before(async () => (d = await startTestDaemon({ parallel: 1, contextSize: 128 }, { importStories: false })));
  after(async () => d?.stop());

  test("import agrees with the validator, and nothing accepted crashes a runner", async () => {
    const seed = Number(process.env.LLMOS_GGUF_LOAD_SEED ?? 7);
    const sample = Number(process.env.LLMOS_GGUF_LOAD_SAMPLE ?? 8);
    const original = readFileSync(STORIES);
    const accepted: Array<{ kind: string; data: Buffer }> = [];
    let rejected = 0;
    for (const m of mutateGguf(seed, original, 3000)) {
      try {
        validateModelMetadata(parseGgufBuffer(m.data, m.data.length));
        if (accepted.length < sample && !accepted.some((a) => a.data.equals(m.data))) accepted.push(m);
      } catch {
        if (rejected++ < 5) {
          // A rejected mutant must be rejected by the daemon's import too.
          const file = path.join(d.home, `rejected-${rejected}.gguf`);
          writeFileSync(file, m.data);
          const r = await api(d, "POST", "/api/models/import", { path: file, name: `rejected-${rejected}` });
          assert.equal(r.status, 400, `${m.kind}: ${r.text}`);
        }
      }
      if (accepted.length >= sample && rejected >= 5) break;
    }
    assert.ok(accepted.length >= Math.min(sample, 3), `only ${accepted.length} accepted mutants`);
    const outcomes: string[] = [];
    for (const [i, m] of accepted.entries()) {
      const file = path.join(d.home, `mutant-${i}.gguf`);
      writeFileSync(file, m.data);
      const imported = await api(d, "POST", "/api/models/import", { path: file, name: `mutant-${i}` });
      assert.equal(imported.status, 200, `${m.kind}: the validator accepted it, so import must: ${imported.text}`);
      const r = await api(d, "POST", "/v1/completions", {
        model: `mutant-${i}`,
        prompt: "Once upon a time",
        max_tokens: 4,
      });
      outcomes.push(`${m.kind}: ${r.status} ${r.json?.error?.code ?? "ok"}`);
      assert.notEqual(r.json?.error?.code, "runner_crashed", `${m.kind} crashed a runner`);
      assert.ok(r.status === 200 || r.status === 500 || r.status === 400, `${m.kind}: ${r.status} ${r.text}`);
      await api(d, "POST", `/api/models/mutant-${i}/unload`);
    }
    assert.equal((await api(d, "GET", "/healthz")).status, 200);
    const crashes = (await api(d, "GET", "/metrics")).text.match(/llmos_runner_crashes_total (\d+)/)?.[1];
    assert.equal(crashes, "0", outcomes.join("\n"));
  });
});
