import { LLAMA_TOKENIZER_MODELS } from "./llama-asserts.js";
import { parseGgufBuffer } from "./reader.js";
import { rewriteGgufBuffer } from "./rewrite.js";
import { locateGgufFields, type GgufField, type GgufFieldKind } from "./header-fields.js";
import type { GgufFile } from "./gguf-file.js";
import { GgufValueType, type GgufTypeInfo, type GgufValue } from "./types.js";
import { materialize } from "./values.js";
import { typed, type GgufTypedValue } from "./writer.js";

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

const FLOAT_SPECIALS = [NaN, -1, Infinity, -Infinity, 0, -0, 1e38, -1e-30, 1e-45, 65504.5];
const STRING_SPECIALS = [
  "",
  "x",
  "\u0000",
  "llama",
  "\u2581".repeat(300),
  ...Object.keys(LLAMA_TOKENIZER_MODELS),
  "gpt-2",
];
const INT_RANGES: Readonly<Record<number, [bigint, bigint]>> = {
  [GgufValueType.UINT8]: [0n, 255n],
  [GgufValueType.INT8]: [-128n, 127n],
  [GgufValueType.UINT16]: [0n, 65535n],
  [GgufValueType.INT16]: [-32768n, 32767n],
  [GgufValueType.UINT32]: [0n, 0xffffffffn],
  [GgufValueType.INT32]: [-(2n ** 31n), 2n ** 31n - 1n],
  [GgufValueType.UINT64]: [0n, 2n ** 64n - 1n],
  [GgufValueType.INT64]: [-(2n ** 63n), 2n ** 63n - 1n],
};

/**
 * A hostile value of the same GGUF type as `value` (or, rarely, of another type): NaN, negative and infinite
 * floats, unknown or empty strings and known tokenizer names, integers at their type's edges or off by one,
 * arrays emptied, halved or with one element replaced.
 */
function hostileValue(rnd: () => number, info: GgufTypeInfo, value: GgufValue): GgufTypedValue | null {
  const int = (n: number): number => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  if (rnd() < 0.05) return null; // delete the key
  if (rnd() < 0.05) return typed(GgufValueType.UINT32, pick([0, 1, 0xffffffff]));
  switch (info.type) {
    case GgufValueType.FLOAT32:
    case GgufValueType.FLOAT64:
      return typed(info.type, pick(FLOAT_SPECIALS));
    case GgufValueType.STRING:
      return typed(info.type, pick(STRING_SPECIALS));
    case GgufValueType.BOOL:
      return typed(info.type, !value);
    case GgufValueType.ARRAY: {
      const list = value as GgufValue[];
      const choice = int(3);
      const next = choice === 0 ? [] : choice === 1 ? list.slice(0, Math.floor(list.length / 2)) : [...list];
      if (choice === 2 && next.length > 0) {
        const inner = hostileValue(rnd, info.element, next[0]!);
        if (inner && inner.typeInfo.type === info.element.type) next[int(next.length)] = inner.value;
      }
      return { typeInfo: info, value: next };
    }
    default: {
      const [min, max] = INT_RANGES[info.type]!;
      const v = BigInt(value as number | bigint);
      const candidates = [min, max, 0n, 1n, v + 1n, v - 1n, v * 2n, 513n, 1025n].filter((x) => x >= min && x <= max);
      const out = pick(candidates);
      const asNumber = info.type !== GgufValueType.UINT64 && info.type !== GgufValueType.INT64;
      return typed(info.type, asNumber ? Number(out) : out);
    }
  }
}

function headerEnd(fields: readonly GgufField[]): number {
  const last = fields[fields.length - 1];
  return last ? last.pos + last.width : 4;
}

/**
 * Yields `count` deterministic mutants of a valid GGUF file `original`: bit flips and byte overwrites in
 * the header, truncations, huge or off-by-one values written over real counts and lengths, changed value
 * and tensor types, shifted tensor offsets, changed dims, duplicated keys, and well-formed files with one hostile
 * metadata value (NaN or negative floats, unknown tokenizer names, integers at their type's edges, arrays cut
 * short). Same seed, same mutants.
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
  let parsed: GgufFile | undefined;
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
    [
      "metadata_value",
      () => {
        // A well-formed file whose values are hostile: what llama.cpp trusts after its own parser accepted the file.
        parsed ??= parseGgufBuffer(original, original.length);
        const keys = Object.keys(parsed.metadata);
        const key = pick(keys);
        const edit = hostileValue(rnd, parsed.metadataTypes[key]!, materialize(parsed.metadata[key]!));
        try {
          return rewriteGgufBuffer(original, { [key]: edit }, parsed, fields);
        } catch {
          return Buffer.from(original); // the writer refused the value (e.g. an alignment that is no power of 2)
        }
      },
    ],
  ];
  for (let i = 0; i < count; i++) {
    const [kind, make] = pick(mutators);
    yield { kind, data: make() };
  }
}
