import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  GgufValueType,
  locateGgufFields,
  mutateGguf,
  parseGgufBuffer,
  rewriteGguf,
  typed,
  validateModelMetadata,
  type GgufMetadataEdits,
} from "@llmos/gguf";
import { STORIES } from "../support/paths.js";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";

/**
 * The model-file campaign: seeded mutants of a real model (bit flips, huge counts, shifted offsets, hostile metadata
 * values, ...) go through the validator; every one it accepts is imported and run by a real runner. Each outcome is
 * counted: rejected, ran, request refused, load error, runner crash, stall. The daemon must never crash or hang,
 * every stall must be caught by the watchdog, and a runner may crash only for a cause listed in KNOWN_RUNNER_CRASHES
 * (causes the validator cannot know; each is named in docs/security.md).
 * CI runs a bounded campaign; `npm run fuzz` a long one (LLMOS_GGUF_CAMPAIGN_MUTANTS, LLMOS_GGUF_CAMPAIGN_SEED,
 * LLMOS_GGUF_CAMPAIGN_MODEL).
 */
const SEED = Number(process.env.LLMOS_GGUF_CAMPAIGN_SEED ?? 7);
const MUTANTS = Number(process.env.LLMOS_GGUF_CAMPAIGN_MUTANTS ?? 200);
/** The model mutated: stories260K, or another GGUF file (e.g. ../shared/models/llama-2-tiny-random.gguf). */
const MODEL = process.env.LLMOS_GGUF_CAMPAIGN_MODEL ?? STORIES;
const STALL_MS = 10_000;

/** Runner crashes the validator cannot prevent, by what llama.cpp wrote before aborting. Empty: none is known. */
const KNOWN_RUNNER_CRASHES: ReadonlyArray<{ stderr: RegExp; cause: string }> = [];

/**
 * Regression corpus: mutants that crashed runners before the validator knew about them. Written by this test from
 * the real model with the project's GGUF writer (no binaries in the repository); each must be refused at import.
 */
const CRASHED_BEFORE: ReadonlyArray<{ name: string; edits: GgufMetadataEdits; refusal: RegExp; crashed: string }> = [
  {
    name: "alignment-16",
    edits: { "general.alignment": 16 },
    refusal: /general.alignment is 16/,
    crashed: "ggml-backend.cpp: GGML_ASSERT buffer pointer must be aligned (at load)",
  },
  {
    name: "alignment-1",
    edits: { "general.alignment": 1 },
    refusal: /general.alignment is 1;/,
    crashed: "ggml-backend.cpp: GGML_ASSERT buffer pointer must be aligned (at load)",
  },
  {
    name: "rms-epsilon-nan",
    edits: { "llama.attention.layer_norm_rms_epsilon": NaN },
    refusal: /layer_norm_rms_epsilon is NaN/,
    crashed: "ggml-cpu/ops.cpp: GGML_ASSERT(eps >= 0.0f) (first decode)",
  },
  {
    name: "rms-epsilon-negative",
    edits: { "llama.attention.layer_norm_rms_epsilon": typed(GgufValueType.FLOAT32, -1) },
    refusal: /layer_norm_rms_epsilon is -1/,
    crashed: "ggml-cpu/ops.cpp: GGML_ASSERT(eps >= 0.0f) (first decode)",
  },
  {
    name: "tokenizer-bert-with-byte-tokens",
    edits: { "tokenizer.ggml.model": "bert" },
    refusal: /"bert" \(WordPiece\) but token 3 is a byte token/,
    crashed: "llama-vocab.cpp: GGML_ABORT fatal error in token_to_byte (at load)",
  },
  {
    name: "norm-weight-f16",
    edits: {},
    refusal: /1-D of type F16/,
    crashed: "ggml-cpu: binary op with an F16 second operand (first decode)",
  },
];

type Outcome = "rejected" | "ran" | "refused" | "too_big" | "load_error" | "runner_crash" | "stall";

describe("model-file campaign: mutated GGUF files through the validator and real runners", () => {
  let d: TestDaemon;
  before(async () => {
    d = await startTestDaemon(
      { parallel: 1, contextSize: 128, runnerStallTimeoutMs: STALL_MS },
      { importStories: false },
    );
  });
  after(async () => d?.stop());

  test("the regression corpus: every mutant that crashed a runner is refused at import, naming why", async () => {
    for (const fixture of CRASHED_BEFORE) {
      const file = path.join(d.filesDir, `${fixture.name}.gguf`);
      if (fixture.name === "norm-weight-f16") {
        // Seen in an earlier campaign: a norm weight retyped F32 -> F16 in the header (a byte edit, not metadata).
        const bytes = Buffer.from(readFileSync(STORIES));
        const type = locateGgufFields(bytes).find(
          (f) => f.kind === "ggml_type" && f.owner === "blk.0.ffn_norm.weight",
        )!;
        bytes.writeUInt32LE(1, type.pos); // GGML_TYPE_F16
        writeFileSync(file, bytes);
      } else {
        await rewriteGguf(STORIES, file, fixture.edits);
      }
      const r = await api(d, "POST", "/api/models/import", { path: file, name: fixture.name });
      assert.equal(r.status, 400, `${fixture.name} (crashed: ${fixture.crashed}): ${r.text}`);
      assert.equal(r.json.error.code, "invalid_model_file");
      assert.match(r.json.error.message, fixture.refusal, fixture.name);
    }
    assert.equal((await api(d, "GET", "/healthz")).status, 200);
  });

  test("accepted mutants are imported and run: no daemon crash, no undetected stall, no unknown runner crash", async (t) => {
    const original = readFileSync(MODEL);
    const counts: Record<Outcome, number> = {
      rejected: 0,
      ran: 0,
      refused: 0,
      too_big: 0,
      load_error: 0,
      runner_crash: 0,
      stall: 0,
    };
    const seen = new Set<string>();
    const crashes: string[] = [];
    const unknown: string[] = [];
    let checkedRejects = 0;
    let n = 0;
    for (const m of mutateGguf(SEED, original, MUTANTS)) {
      n++;
      const hash = createHash("sha256").update(m.data).digest("hex");
      if (seen.has(hash)) continue;
      seen.add(hash);
      const file = path.join(d.filesDir, "mutant.gguf");
      let accepted = true;
      try {
        validateModelMetadata(parseGgufBuffer(m.data, m.data.length));
      } catch {
        accepted = false;
      }
      if (!accepted) {
        counts.rejected++;
        if (checkedRejects++ < 5) {
          // The daemon's import refuses what the validator refuses.
          writeFileSync(file, m.data);
          const r = await api(d, "POST", "/api/models/import", { path: file, name: "rejected" });
          assert.equal(r.status, 400, `mutant #${n} (${m.kind}): ${r.text}`);
        }
        continue;
      }
      writeFileSync(file, m.data);
      const name = `mutant-${n}`;
      const imported = await api(d, "POST", "/api/models/import", { path: file, name });
      assert.equal(imported.status, 200, `mutant #${n} (${m.kind}): the validator accepted it, so must import`);
      const logsBefore = d.logs.length;
      let res: Response;
      try {
        res = await fetch(`${d.url}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: name, prompt: "Once upon a time", max_tokens: 4 }),
          // Far above the stall timeout: a request still open by then is a stall the watchdog missed.
          signal: AbortSignal.timeout(STALL_MS * 3 + 60_000),
        });
      } catch (error) {
        assert.fail(`mutant #${n} (${m.kind}): no answer (an undetected stall?): ${String(error)}`);
      }
      const body = (await res.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
      const code = body.error?.code;
      const outcome: Outcome =
        res.status === 200
          ? "ran"
          : code === "runner_crashed"
            ? "runner_crash"
            : code === "runner_stalled"
              ? "stall"
              : code === "model_load_failed"
                ? "load_error"
                : code === "insufficient_memory"
                  ? "too_big"
                  : res.status < 500
                    ? "refused"
                    : (assert.fail(`mutant #${n} (${m.kind}): ${res.status} ${JSON.stringify(body)}`) as never);
      counts[outcome]++;
      if (outcome === "runner_crash") {
        const stderr = d.logs
          .slice(logsBefore)
          .filter((l) => l.includes("runner exited unexpectedly"))
          .join("\n");
        const known = KNOWN_RUNNER_CRASHES.find((k) => k.stderr.test(stderr));
        const line = `#${n} ${m.kind}: ${stderr.slice(0, 400)}`;
        crashes.push(line);
        if (!known) unknown.push(line);
      }
      await api(d, "DELETE", `/api/models/${name}`);
      if (counts.ran % 10 === 0) assert.equal((await api(d, "GET", "/healthz")).status, 200);
    }
    t.diagnostic(
      `${path.basename(MODEL)}, seed ${SEED}, ${n} mutants (${seen.size} distinct): ${JSON.stringify(counts)}`,
    );
    for (const c of crashes) t.diagnostic(`runner crash ${c}`);
    assert.equal((await api(d, "GET", "/healthz")).status, 200, "the daemon serves on");
    assert.deepEqual(
      unknown,
      [],
      "runner crashes the validator should have prevented (or that docs/security.md must name)",
    );
  });
});
