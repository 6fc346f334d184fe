/** Encoders from float32 values to the ggml tensor formats the synthetic-model writer emits. */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE-754 half-precision bits of `v`, rounded to nearest even (as ggml's GGML_FP32_TO_FP16). */
export function f32ToF16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0); // inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) {
    // Subnormal half (or zero).
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (and up to inf).
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

/** The float value of IEEE-754 half-precision bits. */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** F32 tensor bytes of `values`. */
export function encodeF32(values: Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

/** F16 tensor bytes of `values`. */
export function encodeF16(values: Float32Array): Buffer {
  const out = Buffer.alloc(values.length * 2);
  for (let i = 0; i < values.length; i++) out.writeUInt16LE(f32ToF16Bits(values[i]!), i * 2);
  return out;
}

/** Q8_0: blocks of 32 values, each an f16 scale d = max|x| / 127 and 32 int8 q = round(x / d). */
export const Q8_0_BLOCK = 32;
/** Bytes per Q8_0 block. */
export const Q8_0_BLOCK_BYTES = 2 + Q8_0_BLOCK;

/**
 * Q8_0 tensor bytes of `values` (length a multiple of 32), as ggml's quantize_row_q8_0_ref: the scale is
 * computed in f32, stored as f16, and the quants use the f32 inverse scale.
 */
export function encodeQ8_0(values: Float32Array): Buffer {
  if (values.length % Q8_0_BLOCK !== 0)
    throw new RangeError(`Q8_0 needs a multiple of 32 values, got ${values.length}`);
  const blocks = values.length / Q8_0_BLOCK;
  const out = Buffer.alloc(blocks * Q8_0_BLOCK_BYTES);
  for (let b = 0; b < blocks; b++) {
    const base = b * Q8_0_BLOCK;
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK; j++) amax = Math.max(amax, Math.abs(values[base + j]!));
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const o = b * Q8_0_BLOCK_BYTES;
    out.writeUInt16LE(f32ToF16Bits(d), o);
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      const x = values[base + j]! * id;
      // roundf semantics (half away from zero), clamped against float error at the edges.
      const q = Math.sign(x) * Math.round(Math.abs(x));
      out.writeInt8(Math.max(-127, Math.min(127, q)), o + 2 + j);
    }
  }
  return out;
}

/** Decodes Q8_0 bytes back to floats (for tests and inspection). */
export function decodeQ8_0(bytes: Buffer): Float32Array {
  const blocks = Math.floor(bytes.length / Q8_0_BLOCK_BYTES);
  const out = new Float32Array(blocks * Q8_0_BLOCK);
  for (let b = 0; b < blocks; b++) {
    const o = b * Q8_0_BLOCK_BYTES;
    const d = f16BitsToF32(bytes.readUInt16LE(o));
    for (let j = 0; j < Q8_0_BLOCK; j++) out[b * Q8_0_BLOCK + j] = d * bytes.readInt8(o + 2 + j);
  }
  return out;
}
