import { test, describe, after, before } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel } from "node-llama-cpp";
import {
  GgufError,
  GgufValueType,
  GgufWriter,
  SYNTH_SHAPES,
  encodeF16,
  encodeQ8_0,
  parseGgufBuffer,
  readGguf,
  standardShape,
  summarizeGguf,
  synthesizeLlamaModel,
  typed,
  typedArray,
  validateModelMetadata,
  writeGguf,
  type LlamaShape,
} from "../src/index.js";
import { assertInvariants } from "./invariants.js";
import { TINY } from "./models.js";

const dir = mkdtempSync(join(tmpdir(), "llmos-gguf-writer-"));
after(() => rmSync(dir, { recursive: true, force: true }));

async function bytesAt(path: string, offset: number, size: number): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const b = Buffer.alloc(size);
    await fh.read(b, 0, size, offset);
    return b;
  } finally {
    await fh.close();
  }
}

function sha(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

describe("GgufWriter", () => {
  test("a written file round-trips through readGguf: metadata, types, tensors, data", async () => {
    const path = join(dir, "roundtrip.gguf");
    const f32 = new Float32Array([1.5, -2, 3.25, 0]);
    const f16src = new Float32Array(8).map((_, i) => i / 4 - 1);
    const q8src = new Float32Array(64).map((_, i) => Math.cos(i));
    const metadata = {
      "general.architecture": "test",
      "t.u32": 7,
      "t.i32": -7,
      "t.f32": 0.5,
      "t.bool": true,
      "t.u64": 2n ** 60n,
      "t.i64": -(2n ** 60n),
      "t.u8": typed(GgufValueType.UINT8, 255),
      "t.i8": typed(GgufValueType.INT8, -128),
      "t.u16": typed(GgufValueType.UINT16, 65535),
      "t.i16": typed(GgufValueType.INT16, -32768),
      "t.f64": typed(GgufValueType.FLOAT64, Math.PI),
      "t.small_u64": typed(GgufValueType.UINT64, 5),
      "t.strings": ["a", "ünï", ""],
      "t.floats": typedArray(GgufValueType.FLOAT32, [0.25, -1]),
      "t.ints": [1, -2, 3],
      "t.nested": [[1, 2], [3]],
      "t.empty": [],
      ["__proto__"]: "plain data",
    };
    await writeGguf(path, {
      metadata,
      tensors: [
        { name: "a", dims: [4], type: 0, data: Buffer.from(f32.buffer) },
        {
          name: "b",
          dims: [4, 2],
          type: 1,
          data: () => [encodeF16(f16src.subarray(0, 4)), encodeF16(f16src.subarray(4))],
        },
        {
          name: "c",
          dims: [32, 2],
          type: 8,
          data: async function* () {
            yield encodeQ8_0(q8src);
          },
        },
      ],
    });
    const g = await readGguf(path);
    assertInvariants(g);
    assert.equal(g.version, 3);
    const md = g.metadata;
    assert.equal(md["general.architecture"], "test");
    assert.equal(md["t.u32"], 7);
    assert.equal(md["t.i32"], -7);
    assert.equal(md["t.f32"], 0.5);
    assert.equal(md["t.bool"], true);
    assert.equal(md["t.u64"], 2n ** 60n);
    assert.equal(md["t.i64"], -(2n ** 60n));
    assert.equal(md["t.u8"], 255);
    assert.equal(md["t.i8"], -128);
    assert.equal(md["t.u16"], 65535);
    assert.equal(md["t.i16"], -32768);
    assert.equal(md["t.f64"], Math.PI);
    assert.equal(md["t.small_u64"], 5);
    assert.deepEqual(md["t.strings"], ["a", "ünï", ""]);
    assert.deepEqual(md["t.floats"], [0.25, -1]);
    assert.deepEqual(md["t.ints"], [1, -2, 3]);
    assert.deepEqual(md["t.nested"], [[1, 2], [3]]);
    assert.deepEqual(md["t.empty"], []);
    assert.equal(Object.getOwnPropertyDescriptor(md, "__proto__")?.value, "plain data");
    const types = g.metadataTypes;
    assert.deepEqual(types["t.u32"], { type: GgufValueType.UINT32 });
    assert.deepEqual(types["t.i32"], { type: GgufValueType.INT32 });
    assert.deepEqual(types["t.f32"], { type: GgufValueType.FLOAT32 });
    assert.deepEqual(types["t.u64"], { type: GgufValueType.UINT64 });
    assert.deepEqual(types["t.i64"], { type: GgufValueType.INT64 });
    assert.deepEqual(types["t.small_u64"], { type: GgufValueType.UINT64 });
    assert.deepEqual(types["t.ints"], { type: GgufValueType.ARRAY, element: { type: GgufValueType.INT32 } });
    assert.deepEqual(types["t.nested"], {
      type: GgufValueType.ARRAY,
      element: { type: GgufValueType.ARRAY, element: { type: GgufValueType.UINT32 } },
    });

    assert.deepEqual(
      g.tensors.map((t) => [t.name, t.typeName, t.dims, t.size]),
      [
        ["a", "F32", [4], 16],
        ["b", "F16", [4, 2], 16],
        ["c", "Q8_0", [32, 2], 68],
      ],
    );
    const [a, b, c] = g.tensors;
    assert.deepEqual(await bytesAt(path, a!.offset, a!.size), Buffer.from(f32.buffer));
    assert.deepEqual(await bytesAt(path, b!.offset, b!.size), encodeF16(f16src));
    assert.deepEqual(await bytesAt(path, c!.offset, c!.size), encodeQ8_0(q8src));
    assert.ok(!readdirSync(dir).some((f) => f.includes(".partial-")));
  });

  test("alignment: general.alignment 64 is honoured; invalid alignments are rejected on both sides", async () => {
    const path = join(dir, "align.gguf");
    const w = new GgufWriter().setMetadata("general.alignment", 64);
    for (let i = 0; i < 3; i++) w.addTensor({ name: `t${i}`, dims: [3], type: 0, data: Buffer.alloc(12) });
    await w.write(path);
    const g = await readGguf(path);
    assert.equal(g.alignment, 64);
    assert.equal(g.dataOffset % 64, 0);
    assert.deepEqual(
      g.tensors.map((t) => t.offset - g.dataOffset),
      [0, 64, 128],
    );

    assert.throws(
      () => new GgufWriter().setMetadata("general.alignment", 48).encodeHeader(),
      (e) => e instanceof GgufError && e.code === "bad_alignment",
    );
    // The same file with general.alignment patched to 48: the reader refuses it.
    const bytes = readFileSync(path);
    const at = bytes.indexOf("general.alignment") + "general.alignment".length + 4;
    assert.equal(bytes.readUInt32LE(at), 64);
    const patched = Buffer.from(bytes);
    patched.writeUInt32LE(48, at);
    assert.throws(
      () => parseGgufBuffer(patched, patched.length),
      (e) => e instanceof GgufError && e.code === "bad_alignment" && /48 is not a power of 2/.test(e.message),
    );
    // ... and general.alignment stored as u64 (llama.cpp requires u32).
    const p2 = join(dir, "align64.gguf");
    await new GgufWriter().setMetadata("general.alignment", typed(GgufValueType.UINT64, 32)).write(p2);
    await assert.rejects(readGguf(p2), (e) => e instanceof GgufError && e.code === "bad_alignment");
  });

  test("headers over 1 MiB are read by growing the read", async () => {
    const path = join(dir, "bighdr.gguf");
    const big = "x".repeat(3 * 1024 * 1024 + 17);
    await writeGguf(path, {
      metadata: { "t.big": big, "t.after": 1 },
      tensors: [{ name: "w", dims: [2], type: 0, data: Buffer.alloc(8) }],
    });
    const g = await readGguf(path);
    assert.equal((g.metadata["t.big"] as string).length, big.length);
    assert.equal(g.metadata["t.after"], 1);
    assert.ok(g.headerBytes > 3 * 1024 * 1024);
    await assert.rejects(
      readGguf(path, { maxHeaderBytes: 1024 * 1024 }),
      (e) => e instanceof GgufError && e.code === "limit_exceeded",
    );
  });

  test("a data producer with the wrong byte count fails and leaves no file", async () => {
    const path = join(dir, "short.gguf");
    await assert.rejects(
      writeGguf(path, { metadata: {}, tensors: [{ name: "w", dims: [4], type: 0, data: Buffer.alloc(12) }] }),
      (e) => e instanceof GgufError && e.code === "bad_tensor" && /gave 12 bytes, expected 16/.test(e.message),
    );
    assert.ok(!existsSync(path));
    assert.ok(!readdirSync(dir).some((f) => f.startsWith("short.gguf")));
    assert.throws(
      () => new GgufWriter().addTensor({ name: "q", dims: [33], type: 8, data: Buffer.alloc(0) }),
      (e) => e instanceof GgufError && e.code === "bad_tensor",
    );
    assert.throws(
      () => new GgufWriter().addTensor({ name: "u", dims: [1], type: 4, data: Buffer.alloc(0) }),
      (e) => e instanceof GgufError && e.code === "bad_type",
    );
    assert.throws(
      () => new GgufWriter().addTensor({ name: "n".repeat(64), dims: [1], type: 0, data: Buffer.alloc(4) }),
      (e) => e instanceof GgufError && e.code === "bad_tensor",
    );
    const dupe = new GgufWriter().addTensor({ name: "d", dims: [1], type: 0, data: Buffer.alloc(4) });
    assert.throws(
      () => dupe.addTensor({ name: "d", dims: [1], type: 0, data: Buffer.alloc(4) }),
      (e) => e instanceof GgufError && e.code === "duplicate",
    );
  });
});

describe("synthetic llama models run in real llama.cpp", () => {
  let llama: Llama;
  before(async () => {
    llama = await getLlama({ gpu: false, build: "never", maxThreads: 1, logLevel: LlamaLogLevel.error });
  });
  after(async () => {
    await llama?.dispose();
  });
  const tiny = (type: LlamaShape["type"], seed = 1): LlamaShape => ({
    dim: 64,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    ffn: 128,
    vocab: 512,
    type,
    seed,
  });

  async function withModel<T>(path: string, fn: (m: LlamaModel) => Promise<T>): Promise<T> {
    const model = await llama.loadModel({ modelPath: path });
    try {
      return await fn(model);
    } finally {
      await model.dispose();
    }
  }

  async function generate(model: LlamaModel, prompt: string, n: number): Promise<number[]> {
    const ctx = await model.createContext({ contextSize: 256, threads: 1 });
    try {
      const out: number[] = [];
      for await (const t of ctx.getSequence().evaluate(model.tokenize(prompt, true), { temperature: 0 })) {
        out.push(t);
        if (out.length >= n) break;
      }
      return out;
    } finally {
      await ctx.dispose();
    }
  }

  async function embed(model: LlamaModel, text: string): Promise<readonly number[]> {
    const ctx = await model.createEmbeddingContext({ contextSize: 256, threads: 1 });
    try {
      return (await ctx.getEmbeddingFor(text)).vector;
    } finally {
      await ctx.dispose();
    }
  }

  const cosine = (a: readonly number[], b: readonly number[]): number => {
    let d = 0,
      x = 0,
      y = 0;
    for (let i = 0; i < a.length; i++) {
      d += a[i]! * b[i]!;
      x += a[i]! ** 2;
      y += b[i]! ** 2;
    }
    return d / Math.sqrt(x * y);
  };

  const embeddings = new Map<string, readonly number[]>();

  for (const type of ["F32", "F16", "Q8_0"] as const) {
    test(`${type}: validates, loads, tokenizes and generates`, async () => {
      const path = join(dir, `synth-${type}.gguf`);
      await synthesizeLlamaModel(path, tiny(type));
      const g = await readGguf(path);
      assertInvariants(g);
      validateModelMetadata(g);
      const s = summarizeGguf(g);
      assert.equal(s.quantization, type);
      assert.equal(s.vocabSize, 512);
      assert.equal(s.blockCount, 2);
      assert.equal(s.headCountKv, 2);
      assert.equal(g.tensors.length, 3 + 2 * 9);
      assert.ok(g.tensors.filter((t) => t.name.endsWith("norm.weight")).every((t) => t.typeName === "F32"));
      assert.ok(g.tensors.filter((t) => !t.name.endsWith("norm.weight")).every((t) => t.typeName === type));
      assert.deepEqual(g.tensors.find((t) => t.name === "blk.1.attn_k.weight")?.dims, [64, 32]);
      assert.deepEqual(g.tensors.find((t) => t.name === "blk.0.ffn_down.weight")?.dims, [128, 64]);

      await withModel(path, async (model) => {
        const text = "Hello world, ünïcode 🙂!";
        const tokens = model.tokenize(text, false);
        assert.ok(tokens.length > 0 && tokens.every((t) => t >= 0 && t < 512));
        assert.equal(model.detokenize(tokens), text);
        const out = await generate(model, "Once upon a time", 8);
        assert.equal(out.length, 8);
        assert.ok(out.every((t) => Number.isInteger(t) && t >= 0 && t < 512));
        const v = await embed(model, "Once upon a time there was");
        assert.equal(v.length, 64);
        assert.ok(v.every(Number.isFinite));
        embeddings.set(type, v);
      });
    });
  }

  test("F16 and Q8_0 encode the same weights as F32 (llama.cpp hidden states agree)", async () => {
    const f32 = embeddings.get("F32");
    assert.ok(f32 && embeddings.get("F16") && embeddings.get("Q8_0"), "the per-type tests must run first");
    assert.ok(cosine(f32, embeddings.get("F16")!) > 0.999);
    assert.ok(cosine(f32, embeddings.get("Q8_0")!) > 0.99);
    // A different seed gives a different model: the check above can fail.
    const other = join(dir, "synth-other.gguf");
    await synthesizeLlamaModel(other, tiny("F32", 2));
    const v = await withModel(other, (m) => embed(m, "Once upon a time there was"));
    assert.ok(cosine(f32, v) < 0.9);
  });

  test("same seed and shape give identical bytes", async () => {
    const p1 = join(dir, "det1.gguf");
    const p2 = join(dir, "det2.gguf");
    await synthesizeLlamaModel(p1, tiny("Q8_0", 9));
    await synthesizeLlamaModel(p2, tiny("Q8_0", 9));
    assert.equal(sha(p1), sha(p2));
  });

  test("copyFrom: the 32000-token Llama-2 vocabulary of llama-2-tiny-random", async () => {
    const path = join(dir, "synth-copy.gguf");
    await synthesizeLlamaModel(path, {
      dim: 64,
      layers: 1,
      heads: 4,
      ffn: 128,
      type: "F16",
      tiedEmbeddings: true,
      tokenizer: { copyFrom: TINY },
    });
    const g = await readGguf(path);
    validateModelMetadata(g);
    const s = summarizeGguf(g);
    assert.equal(s.vocabSize, 32000);
    assert.ok(!g.tensors.some((t) => t.name === "output.weight"));
    const source = await readGguf(TINY);
    assert.deepEqual(g.metadata["tokenizer.ggml.tokens"], source.metadata["tokenizer.ggml.tokens"]);
    assert.deepEqual(g.metadataTypes["tokenizer.ggml.scores"], source.metadataTypes["tokenizer.ggml.scores"]);
    const text = "The quick brown fox jumps over the lazy dog.";
    const expected = await withModel(TINY, async (m) => m.tokenize(text));
    await withModel(path, async (model) => {
      assert.deepEqual(model.tokenize(text), expected);
      const out = await generate(model, text, 4);
      assert.equal(out.length, 4);
      assert.ok(out.every((t) => t >= 0 && t < 32000));
    });
    await assert.rejects(
      synthesizeLlamaModel(join(dir, "x.gguf"), {
        dim: 64,
        layers: 1,
        heads: 4,
        ffn: 128,
        vocab: 512,
        type: "F32",
        tokenizer: { copyFrom: TINY },
      }),
      RangeError,
    );
  });

  test("standard shapes", () => {
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(SYNTH_SHAPES).map(([k, s]) => [k, [s.dim, s.layers, s.heads, s.ffn, s.vocab, s.type]]),
      ),
      {
        "llama-42m": [512, 8, 8, 1376, 32000, "F16"],
        "llama-110m": [768, 12, 12, 2048, 32000, "F16"],
        "llama-42m-q8_0": [512, 8, 8, 1376, 32000, "Q8_0"],
        "llama-110m-q8_0": [768, 12, 12, 2048, 32000, "Q8_0"],
      },
    );
    assert.deepEqual(standardShape("llama-42m", TINY).tokenizer, { copyFrom: TINY });
    assert.equal(standardShape("llama-110m").tokenizer, "byte");
  });

  test("invalid shapes are refused before writing", async () => {
    const p = join(dir, "bad.gguf");
    await assert.rejects(synthesizeLlamaModel(p, { ...tiny("F32"), heads: 5 }), RangeError);
    await assert.rejects(synthesizeLlamaModel(p, { ...tiny("Q8_0"), ffn: 100 }), RangeError);
    await assert.rejects(synthesizeLlamaModel(p, { ...tiny("F32"), vocab: 100 }), RangeError);
    assert.ok(!existsSync(p));
  });
});
