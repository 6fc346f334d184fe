/** Fast tests of the decisions around quantization and jobs (no model, no worker). */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { quantizeTarget } from "@llmos/gguf";
import { EvalAccumulator, percentile } from "../../src/engine/eval/logit-stats.js";
import { classifyQuantizeFailure, parseQuantizeLogLine } from "../../src/engine/llama-ffi/quantize-log.js";
import { imatrixMismatch, JobRegistry, nextState, resolveQuantizeType } from "../../src/model-jobs/index.js";

describe("llama.cpp's quantize log", () => {
  test("per-tensor progress, fallbacks, sizes and the failure reason", () => {
    assert.deepEqual(
      parseQuantizeLogLine(
        "[   3/  48] blk.0.attn_k.weight                  - [    64,     32,      1,      1], type =    f32, converting to q5_0 .. size =     0.01 MiB ->     0.00 MiB",
      ),
      { kind: "tensor", index: 3, total: 48, name: "blk.0.attn_k.weight" },
    );
    assert.deepEqual(
      parseQuantizeLogLine("llama_model_quantize_impl: WARNING: 36 of 48 tensor(s) required fallback quantization"),
      { kind: "fallback-count", count: 36, total: 48 },
    );
    assert.deepEqual(parseQuantizeLogLine("llama_model_quantize_impl: quant size  =     0.28 MiB (7.92 BPW)"), {
      kind: "size",
      which: "quant",
      mib: 0.28,
    });
    assert.deepEqual(
      parseQuantizeLogLine("llama_model_quantize: failed to quantize: requantizing from type q8_0 is disabled"),
      {
        kind: "failure",
        reason: "requantizing from type q8_0 is disabled",
      },
    );
    assert.equal(parseQuantizeLogLine("llama_model_loader: - type  f32:   48 tensors"), null);
  });

  test("failure reasons map to llmos's kinds", () => {
    assert.equal(classifyQuantizeFailure("this quantization requires an imatrix!"), "imatrix_required");
    assert.equal(
      classifyQuantizeFailure("imatrix size 64 is different from tensor size 172 for x"),
      "imatrix_mismatch",
    );
    assert.equal(classifyQuantizeFailure("requantizing from type q4_K is disabled"), "requantize_not_allowed");
    assert.equal(classifyQuantizeFailure("basic_ios::clear: iostream error"), "failed");
  });
});

describe("quantization types", () => {
  test("names are case-insensitive, llama-quantize's aliases resolve, unknown ones list the valid", () => {
    assert.equal(quantizeTarget("q4_k_m")?.fileType, 15);
    assert.equal(quantizeTarget("Q4_K")?.name, "Q4_K_M");
    assert.equal(quantizeTarget("IQ2_XXS")?.requiresImatrix, true);
    assert.equal(quantizeTarget("IQ4_NL")?.requiresImatrix, false);
    assert.throws(
      () => resolveQuantizeType("Q7"),
      (e: any) => e.code === "invalid_request" && e.details.validTypes.includes("Q6_K"),
    );
  });

  test("an importance matrix matches a model by tensor name and columns", () => {
    const tensors = [
      { name: "blk.0.attn_q.weight", dims: [64, 64] },
      { name: "blk.0.ffn_down.weight", dims: [172, 64] },
    ];
    const m = (entries: Array<[string, number]>) =>
      imatrixMismatch(new Map(entries.map(([n, c]) => [n, { columns: c, matrices: 1 }])), tensors);
    assert.equal(
      m([
        ["blk.0.attn_q.weight", 64],
        ["blk.0.ffn_down.weight", 172],
      ]),
      null,
    );
    assert.match(m([["blk.0.ffn_down.weight", 64]])!, /64 values for blk\.0\.ffn_down\.weight, which has 172/);
    assert.match(m([["blk.9.attn_q.weight", 64]])!, /this model does not have/);
    assert.match(m([])!, /no entries/);
  });
});

describe("job states", () => {
  test("queued -> running -> succeeded|failed|cancelled; finished jobs do not move", () => {
    assert.equal(nextState("queued", "start"), "running");
    assert.equal(nextState("queued", "cancel"), "cancelled");
    assert.equal(nextState("queued", "succeed"), null);
    assert.equal(nextState("running", "succeed"), "succeeded");
    assert.equal(nextState("running", "fail"), "failed");
    assert.equal(nextState("running", "cancel"), "cancelled");
    for (const done of ["succeeded", "failed", "cancelled"] as const)
      for (const e of ["start", "succeed", "fail", "cancel"] as const) assert.equal(nextState(done, e), null);
  });

  test("a job on a model the caller may not use (its base included) is neither listed, found nor cancelled", async () => {
    const registry = new JobRegistry();
    const never = new Promise<never>(() => {});
    const job = registry.submit("eval", "mine:latest", () => never, ["theirs:latest"]);
    const mineOnly = (m: string) => m.startsWith("mine");
    assert.deepEqual(registry.list(mineOnly), []);
    assert.deepEqual(
      registry.list().map((j) => j.id),
      [job.id],
    );
    for (const call of [() => registry.get(job.id, mineOnly), () => registry.cancel(job.id, mineOnly)])
      assert.throws(call, (e: any) => e.code === "not_found");
    assert.equal(registry.get(job.id).state, "running", "still running");
    assert.equal(registry.cancel(job.id, () => true).state, "cancelled");
  });

  test("waiting jobs are bounded, in all and per key: one more is refused with queue_full", () => {
    const registry = new JobRegistry(60_000, { queued: 3, queuedPerOwner: 2 });
    const never = () => new Promise<never>(() => {});
    const submit = (owner: string | null) => registry.submit("eval", "m", never, [], owner);
    submit("a"); // runs
    submit("a");
    submit("a");
    assert.throws(
      () => submit("a"),
      (e: any) => e.code === "queue_full" && /this key has 2/.test(e.message),
    );
    const b = submit("b");
    assert.throws(
      () => submit(null),
      (e: any) => e.code === "queue_full" && /3 jobs are waiting/.test(e.message),
    );
    registry.cancel(b.id);
    assert.equal(submit(null).state, "queued", "a cancelled job frees its place");
  });
});

describe("eval statistics", () => {
  test("a model against itself: KLD 0, same top token, perplexity ratio 1", () => {
    const acc = new EvalAccumulator(3);
    const rows = Float32Array.from([1, 2, 3, 0.5, 0.1, -2]);
    acc.add(rows, [2, 0], 2, rows.slice());
    const r = acc.result();
    assert.equal(r.kld!.mean, 0);
    assert.equal(r.topTokenAgreement, 1);
    assert.equal(r.perplexityRatio, 1);
  });

  test("perplexity and KL divergence of known distributions", () => {
    const acc = new EvalAccumulator(2);
    // model: p = (0.5, 0.5); base: p = (e/(1+e), 1/(1+e)); next token 0
    acc.add(Float32Array.from([0, 0]), [0], 1, Float32Array.from([1, 0]));
    const r = acc.result();
    assert.ok(Math.abs(r.perplexity - 2) < 1e-9);
    const pb = Math.E / (1 + Math.E);
    const kld = pb * Math.log(pb / 0.5) + (1 - pb) * Math.log((1 - pb) / 0.5);
    assert.ok(Math.abs(r.kld!.mean - kld) < 1e-7, `${r.kld!.mean} vs ${kld}`);
    assert.equal(r.topTokenAgreement, 1); // the first of equal logits is the argmax: token 0 for both
  });

  test("percentile interpolates between sorted values", () => {
    const sorted = Float64Array.from([0, 1, 2, 3, 4]);
    assert.equal(percentile(sorted, 0.5), 2);
    assert.equal(percentile(sorted, 0.99), 3.96);
  });
});
