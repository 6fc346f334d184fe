import { GgufValueType } from "./types.js";

/** Kinds of header fields located by {@link locateGgufFields}. */
export type GgufFieldKind =
  | "version"
  | "tensor_count"
  | "kv_count"
  | "key_length"
  | "value_type"
  | "array_type"
  | "array_length"
  | "string_length"
  | "name_length"
  | "n_dims"
  | "dim"
  | "ggml_type"
  | "offset"
  /** A top-level 32- or 64-bit integer metadata value (hyperparameters, token ids). */
  | "value";

/** One field of a GGUF header: where it is and how wide (4 or 8 bytes, little-endian). */
export interface GgufField {
  kind: GgufFieldKind;
  /** Byte offset of the field in the file. */
  pos: number;
  /** Width in bytes. */
  width: 4 | 8;
  /** The metadata key or tensor name the field belongs to, when any. */
  owner?: string;
}

const SCALAR_SIZES: Readonly<Record<number, number>> = {
  0: 1,
  1: 1,
  2: 2,
  3: 2,
  4: 4,
  5: 4,
  6: 4,
  7: 1,
  10: 8,
  11: 8,
  12: 8,
};

/**
 * Lists the positions of every count, length, type and offset field of a well-formed GGUF header (no
 * validation: pass a file that {@link parseGgufBuffer} accepts). Used to aim mutations at real fields.
 */
export function locateGgufFields(buf: Buffer): GgufField[] {
  const fields: GgufField[] = [];
  let pos = 0;
  const mark = (kind: GgufFieldKind, width: 4 | 8, owner?: string): bigint => {
    fields.push(owner === undefined ? { kind, pos, width } : { kind, pos, width, owner });
    const v = width === 4 ? BigInt(buf.readUInt32LE(pos)) : buf.readBigUInt64LE(pos);
    pos += width;
    return v;
  };
  const str = (kind: GgufFieldKind, owner?: string): string => {
    const len = Number(mark(kind, 8, owner));
    const s = buf.toString("utf8", pos, pos + len);
    pos += len;
    return s;
  };
  const value = (type: number, key: string, topLevel = false): void => {
    if (topLevel && (type === GgufValueType.UINT32 || type === GgufValueType.INT32)) {
      mark("value", 4, key);
    } else if (topLevel && (type === GgufValueType.UINT64 || type === GgufValueType.INT64)) {
      mark("value", 8, key);
    } else if (type === GgufValueType.STRING) {
      str("string_length", key);
    } else if (type === GgufValueType.ARRAY) {
      const elem = Number(mark("array_type", 4, key));
      const n = Number(mark("array_length", 8, key));
      for (let i = 0; i < n; i++) value(elem, key);
    } else {
      pos += SCALAR_SIZES[type] ?? 0;
    }
  };
  pos = 4;
  mark("version", 4);
  const nTensors = Number(mark("tensor_count", 8));
  const nKv = Number(mark("kv_count", 8));
  for (let i = 0; i < nKv; i++) {
    const key = str("key_length");
    value(Number(mark("value_type", 4, key)), key, true);
  }
  for (let i = 0; i < nTensors; i++) {
    const name = str("name_length");
    const nDims = Number(mark("n_dims", 4, name));
    for (let d = 0; d < nDims; d++) mark("dim", 8, name);
    mark("ggml_type", 4, name);
    mark("offset", 8, name);
  }
  return fields;
}

/** A small fast deterministic PRNG (mulberry32); returns floats in [0, 1). */
export function createPrng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HUGE_U64 = [2n ** 62n, 2n ** 40n, 2n ** 32n, 2n ** 53n + 1n, 2n ** 64n - 1n, 2n ** 63n, 65537n, 16777217n, 0n];
const U32_SPECIALS = [0, 1, 4, 9, 13, 31, 43, 99, 0x7fffffff, 0xffffffff];

function headerEnd(fields: readonly GgufField[]): number {
  const last = fields[fields.length - 1];
  return last ? last.pos + last.width : 4;
}

/**
 * Yields `count` deterministic mutants of a valid GGUF file `original`: bit flips and byte overwrites in
 * the header, truncations, huge or off-by-one values written over real counts and lengths, changed value
 * and tensor types, shifted tensor offsets, changed dims, duplicated keys. Same seed, same mutants.
 * Each `data` is a fresh buffer (the original is never modified); `kind` names the mutation.
 */
export function* mutateGguf(seed: number, original: Buffer, count: number): Generator<{ kind: string; data: Buffer }> {
  const rnd = createPrng(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const fields = locateGgufFields(original);
  const end = headerEnd(fields);
  const ofKind = (...kinds: GgufFieldKind[]): GgufField[] => fields.filter((f) => kinds.includes(f.kind));
  const lengthFields = ofKind("tensor_count", "kv_count", "key_length", "array_length", "string_length", "name_length");
  // Tokens arrays hold tens of thousands of string lengths; keep every non-token length and a sample.
  const countFields = lengthFields.filter((f, i) => f.kind !== "string_length" || i % 97 === 0);
  const typeFields = ofKind("value_type", "array_type", "ggml_type", "n_dims", "version");
  const offsetFields = ofKind("offset");
  const dimFields = ofKind("dim");
  const keyFields = ofKind("key_length");
  const valueFields = ofKind("value");
  // Position near a real field half the time; otherwise anywhere in the header.
  const headerPos = (): number => (rnd() < 0.5 && fields.length ? pick(fields).pos + int(8) : int(end));
  const write = (buf: Buffer, f: GgufField, v: bigint): void => {
    if (f.width === 4) buf.writeUInt32LE(Number(v & 0xffffffffn), f.pos);
    else buf.writeBigUInt64LE(v & (2n ** 64n - 1n), f.pos);
  };
  const read = (f: GgufField): bigint =>
    f.width === 4 ? BigInt(original.readUInt32LE(f.pos)) : original.readBigUInt64LE(f.pos);

  const mutators: [string, () => Buffer][] = [
    [
      "bitflip",
      () => {
        const b = Buffer.from(original);
        for (let i = 1 + int(4); i > 0; i--) {
          const p = Math.min(headerPos(), b.length - 1);
          b[p] = b[p]! ^ (1 << int(8));
        }
        return b;
      },
    ],
    [
      "overwrite",
      () => {
        const b = Buffer.from(original);
        const p = headerPos();
        for (let i = 0, n = 1 + int(16); i < n && p + i < b.length; i++) b[p + i] = int(256);
        return b;
      },
    ],
    [
      "truncate",
      () => {
        // Mostly inside or just past the header; sometimes inside the data.
        const len = rnd() < 0.8 ? int(Math.min(original.length, end + 64)) : int(original.length);
        return Buffer.from(original.subarray(0, len));
      },
    ],
    [
      "huge_count",
      () => {
        const b = Buffer.from(original);
        const f = pick(countFields);
        const v = read(f);
        write(b, f, rnd() < 0.6 ? pick(HUGE_U64) : v + BigInt(pick([1, -1, 2, 8, -8, 1000])));
        return b;
      },
    ],
    [
      "type_change",
      () => {
        const b = Buffer.from(original);
        const f = pick(typeFields);
        write(b, f, BigInt(rnd() < 0.7 ? pick(U32_SPECIALS) + (rnd() < 0.5 ? 0 : int(4)) : int(0x100000000)));
        return b;
      },
    ],
    [
      "offset_shift",
      () => {
        const b = Buffer.from(original);
        const f = pick(offsetFields);
        const v = read(f);
        const choice = int(5);
        const nv =
          choice === 0
            ? v + BigInt(pick([1, 2, 16, 31]))
            : choice === 1
              ? v + BigInt(32 * (1 + int(4096)))
              : choice === 2
                ? v >= 32n
                  ? v - 32n * BigInt(1 + int(64))
                  : 0n
                : choice === 3
                  ? read(pick(offsetFields))
                  : pick(HUGE_U64);
        write(b, f, nv);
        return b;
      },
    ],
    [
      "dim_change",
      () => {
        const b = Buffer.from(original);
        const f = pick(dimFields);
        const v = read(f);
        write(b, f, pick([0n, 1n, v + 1n, v * 2n, v * 256n, 2n ** 31n, 2n ** 32n, 2n ** 62n, 2n ** 64n - 1n]));
        return b;
      },
    ],
    [
      "duplicate_key",
      () => {
        // Copy the bytes of one key string over another key of the same length, when there is one.
        const b = Buffer.from(original);
        const a = pick(keyFields);
        const lenA = Number(read(a));
        const same = keyFields.filter((k) => k !== a && Number(read(k)) === lenA);
        const other = same.length ? pick(same) : pick(keyFields);
        const n = Math.min(lenA, Number(read(other)));
        original.copy(b, other.pos + 8, a.pos + 8, a.pos + 8 + n);
        return b;
      },
    ],
    [
      "value_change",
      () => {
        // Hyperparameters llama.cpp trusts (block_count, head_count, ...): zero, huge, off by one.
        const b = Buffer.from(original);
        if (valueFields.length === 0) return b;
        const f = pick(valueFields);
        const v = read(f);
        write(
          b,
          f,
          pick([0n, 1n, v + 1n, v - 1n, v * 2n, 513n, 1025n, 2n ** 31n, 0xffffffffn, BigInt(int(0x100000000))]),
        );
        return b;
      },
    ],
  ];
  for (let i = 0; i < count; i++) {
    const [kind, make] = pick(mutators);
    yield { kind, data: make() };
  }
}
