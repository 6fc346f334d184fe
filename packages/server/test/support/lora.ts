import { GgmlType, GgufValueType, typed, writeGguf } from "@llmos/gguf";

/** A seeded PRNG (mulberry32) in [-1, 1). */
function rand(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

function f32(count: number, next: () => number): Uint8Array {
  const a = new Float32Array(count);
  for (let i = 0; i < count; i++) a[i] = next();
  return new Uint8Array(a.buffer);
}

/**
 * A real LoRA adapter in GGUF for stories260K (dim 64, 5 blocks): rank-`rank` A/B pairs on attn_q and attn_v,
 * random (seeded) and large enough to change greedy output.
 */
export async function writeStoriesLora(
  path: string,
  opts: { rank?: number; seed?: number; scale?: number } = {},
): Promise<void> {
  const rank = opts.rank ?? 4;
  const next = rand(opts.seed ?? 3);
  const scale = opts.scale ?? 0.8;
  const value = () => next() * scale;
  const tensors = [];
  for (let b = 0; b < 5; b++) {
    for (const w of ["attn_q", "attn_v"]) {
      const out = w === "attn_v" ? 32 : 64; // 4 KV heads x head dim 8 for V
      tensors.push({
        name: `blk.${b}.${w}.weight.lora_a`,
        dims: [64, rank],
        type: GgmlType.F32,
        data: f32(64 * rank, value),
      });
      tensors.push({
        name: `blk.${b}.${w}.weight.lora_b`,
        dims: [rank, out],
        type: GgmlType.F32,
        data: f32(rank * out, value),
      });
    }
  }
  await writeGguf(path, {
    metadata: {
      "general.architecture": "llama",
      "general.type": "adapter",
      "general.name": "stories260K test lora",
      "adapter.type": "lora",
      "adapter.lora.alpha": typed(GgufValueType.FLOAT32, rank),
    },
    tensors,
  });
}
