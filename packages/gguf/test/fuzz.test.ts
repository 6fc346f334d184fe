import { test } from "node:test";
import assert from "node:assert/strict";
import { GgufError, mutateGguf, parseGgufBuffer, validateModelMetadata, type GgufFile } from "../src/index.js";
import { STORIES, TINY, modelBytes } from "./models.js";
import { assertInvariants } from "./invariants.js";

// The only place the iteration count is configurable: tests may read it, library code never does.
const ITERATIONS = Number(process.env.GGUF_FUZZ_ITERATIONS ?? 2000);
const SEED = 0x6775_6666; // fixed: failures reproduce

test("mutated GGUF files are accepted or rejected with GgufError, never anything else", (t) => {
  const perFile = Math.max(1, Math.floor(ITERATIONS / 2));
  let accepted = 0;
  let modelValid = 0;
  const rejectedByCode = new Map<string, number>();
  const kinds = new Map<string, number>();
  let slowestMs = 0;
  for (const [i, path] of [STORIES, TINY].entries()) {
    const original = modelBytes(path);
    let n = 0;
    for (const { kind, data } of mutateGguf(SEED + i, original, perFile)) {
      n++;
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      const started = performance.now();
      let result: GgufFile | undefined;
      try {
        result = parseGgufBuffer(data, data.length);
      } catch (e) {
        if (!(e instanceof GgufError)) {
          assert.fail(`mutant #${n} (${kind}) of ${path} threw a non-GgufError: ${String(e)}`);
        }
        assert.ok(e.message.length > 0);
        rejectedByCode.set(e.code, (rejectedByCode.get(e.code) ?? 0) + 1);
      }
      const ms = performance.now() - started;
      slowestMs = Math.max(slowestMs, ms);
      // A hang guard, not a speed assertion: a parse touches each header byte a bounded number of times.
      assert.ok(ms < 10_000, `mutant #${n} (${kind}) took ${ms} ms`);
      if (result) {
        accepted++;
        assertInvariants(result);
        try {
          validateModelMetadata(result);
          modelValid++;
        } catch (e) {
          if (!(e instanceof GgufError))
            assert.fail(`validateModelMetadata threw a non-GgufError on mutant #${n} (${kind}): ${String(e)}`);
          rejectedByCode.set(e.code, (rejectedByCode.get(e.code) ?? 0) + 1);
        }
      }
    }
    assert.equal(n, perFile);
  }
  assert.ok(rejectedByCode.size >= 5, `only ${[...rejectedByCode.keys()].join(",")} were produced`);
  t.diagnostic(
    `iterations ${perFile * 2}, accepted mutants ${accepted}, of which pass validateModelMetadata ${modelValid}`,
  );
  t.diagnostic(`rejected by code ${JSON.stringify(Object.fromEntries(rejectedByCode))}`);
  t.diagnostic(`mutation kinds ${JSON.stringify(Object.fromEntries(kinds))}, slowest parse ${slowestMs.toFixed(1)} ms`);
});

test("mutateGguf is deterministic and leaves the original intact", () => {
  const original = modelBytes(STORIES);
  const copy = Buffer.from(original);
  const a = [...mutateGguf(7, original, 50)];
  const b = [...mutateGguf(7, original, 50)];
  assert.deepEqual(
    a.map((m) => m.kind),
    b.map((m) => m.kind),
  );
  for (let i = 0; i < a.length; i++) assert.ok(a[i]!.data.equals(b[i]!.data));
  assert.ok(original.equals(copy));
  assert.ok(a.some((m) => !m.data.equals(original)));
});
