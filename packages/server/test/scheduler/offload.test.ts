import assert from "node:assert/strict";
import { test } from "node:test";
import { estimateMemory } from "../../src/scheduler/memory-estimator.js";
import { chooseOffload } from "../../src/scheduler/offload.js";

const MiB = 1024 * 1024;
// A 7B-like shape: 32 layers, ~4 GiB of weights.
const shape = {
  tensorBytes: 4096 * MiB,
  blockCount: 32,
  headCount: 32,
  headCountKv: 8,
  embeddingLength: 4096,
  feedForwardLength: 14336,
  vocabSize: 32000,
};
const estimate = estimateMemory(shape, { contextSize: 4096, slots: 1, engine: "llama-ffi" });

test("CPU only without GPU memory", () => {
  assert.deepEqual(chooseOffload(shape, estimate, 0), { gpuLayers: 0, vramBytes: 0, ramBytes: estimate.total });
});

test("everything on the GPU when it fits; RAM keeps only the runner", () => {
  const plan = chooseOffload(shape, estimate, 24 * 1024 * MiB);
  assert.equal(plan.gpuLayers, 33);
  assert.equal(plan.ramBytes, estimate.overhead);
  assert.equal(plan.vramBytes, estimate.weights + estimate.kvCache + estimate.compute);
});

test("partial offload: as many layers as fit, the rest in RAM", () => {
  const half = estimate.compute + (estimate.weights + estimate.kvCache) / 2;
  const plan = chooseOffload(shape, estimate, half);
  assert.ok(plan.gpuLayers >= 15 && plan.gpuLayers <= 16, String(plan.gpuLayers));
  assert.ok(plan.vramBytes <= half);
  assert.ok(plan.ramBytes < estimate.total && plan.ramBytes > estimate.overhead);
  // More GPU memory never means fewer layers.
  let last = 0;
  for (let v = 0; v <= 8 * 1024 * MiB; v += 256 * MiB) {
    const p = chooseOffload(shape, estimate, v);
    assert.ok(p.gpuLayers >= last);
    last = p.gpuLayers;
  }
});

test("too little GPU memory for one layer: CPU only", () => {
  assert.equal(chooseOffload(shape, estimate, estimate.compute + 1).gpuLayers, 0);
});
