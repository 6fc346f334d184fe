import { test } from "node:test";
import assert from "node:assert/strict";
import {
  BYTE_VOCAB_MIN,
  TokenType,
  byteTokenizerMetadata,
  decodeQ8_0,
  encodeF16,
  encodeQ8_0,
  f16BitsToF32,
  f32ToF16Bits,
} from "../src/index.js";

test("f32 -> f16 conversion: exact values, rounding, subnormals, overflow", () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff],
    [70000, 0x7c00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -26, 0x0000], // underflows to zero
    [1 + 2 ** -11, 0x3c00], // tie, rounds to even
    [1 + 3 * 2 ** -11, 0x3c02], // tie, rounds to even (up)
    [0.1, 0x2e66],
  ];
  for (const [v, bits] of cases) assert.equal(f32ToF16Bits(v), bits, `f16(${v})`);
  assert.equal(f32ToF16Bits(NaN) & 0x7c00, 0x7c00);
  assert.ok(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN))));
  // Every finite half round-trips exactly through f32.
  for (let h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) === 0x7c00) continue;
    assert.equal(f32ToF16Bits(f16BitsToF32(h)), h === 0x8000 ? 0x8000 : h);
  }
  const enc = encodeF16(new Float32Array([1, -2]));
  assert.deepEqual([...enc], [0x00, 0x3c, 0x00, 0xc0]);
});

test("Q8_0 blocks: f16 scale then 32 int8, error within half a step", () => {
  const values = new Float32Array(64);
  for (let i = 0; i < 64; i++) values[i] = Math.sin(i * 0.7) * (i < 32 ? 0.05 : 3);
  const bytes = encodeQ8_0(values);
  assert.equal(bytes.length, 2 * 34);
  for (let b = 0; b < 2; b++) {
    const block = values.subarray(b * 32, b * 32 + 32);
    const amax = Math.max(...block.map(Math.abs));
    const d = f16BitsToF32(bytes.readUInt16LE(b * 34));
    assert.ok(Math.abs(d - amax / 127) <= (amax / 127) * 1e-3);
    const qs = [...bytes.subarray(b * 34 + 2, b * 34 + 34)].map((x) => (x << 24) >> 24);
    assert.equal(Math.max(...qs.map(Math.abs)), 127);
  }
  const back = decodeQ8_0(bytes);
  for (let i = 0; i < 64; i++) {
    const block = values.subarray(i < 32 ? 0 : 32, i < 32 ? 32 : 64);
    const step = Math.max(...block.map(Math.abs)) / 127;
    // Half a quantization step, plus the f16 rounding of the scale (2^-11 relative) times |q| <= 127.
    const bound = step * (0.5 + 127 * 2 ** -11);
    assert.ok(Math.abs(back[i]! - values[i]!) <= bound, `value ${i}: ${values[i]} vs ${back[i]}`);
  }
  assert.deepEqual([...encodeQ8_0(new Float32Array(32))], new Array(34).fill(0));
  assert.throws(() => encodeQ8_0(new Float32Array(31)), RangeError);
});

test("byte tokenizer vocabulary", () => {
  const md = byteTokenizerMetadata(1000);
  const tokens = md["tokenizer.ggml.tokens"]!.value as string[];
  const types = md["tokenizer.ggml.token_type"]!.value as number[];
  const scores = md["tokenizer.ggml.scores"]!.value as number[];
  assert.equal(tokens.length, 1000);
  assert.equal(types.length, 1000);
  assert.equal(scores.length, 1000);
  assert.equal(new Set(tokens).size, 1000);
  assert.deepEqual(tokens.slice(0, 4), ["<unk>", "<s>", "</s>", "<0x00>"]);
  assert.equal(tokens[258], "<0xFF>");
  assert.equal(types[0], TokenType.UNKNOWN);
  assert.equal(types[1], TokenType.CONTROL);
  assert.ok(types.slice(3, 259).every((t) => t === TokenType.BYTE));
  assert.ok(types.slice(259).every((t) => t === TokenType.NORMAL));
  assert.equal(md["tokenizer.ggml.model"]!.value, "llama");
  assert.equal(byteTokenizerMetadata(32000)["tokenizer.ggml.tokens"]!.value.toString().length > 0, true);
  assert.equal(new Set(byteTokenizerMetadata(32000)["tokenizer.ggml.tokens"]!.value as string[]).size, 32000);
  assert.throws(() => byteTokenizerMetadata(BYTE_VOCAB_MIN - 1), RangeError);
});
