import { Cursor, q } from "./byte-cursor.js";
import { GgufError } from "./errors.js";
import { GgufValueType, type GgufLimits, type GgufScalarType, type GgufTypeInfo, type GgufValue } from "./types.js";

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Byte size of each fixed-size value type. */
export const SCALAR_SIZES: Readonly<Record<number, number>> = {
  [GgufValueType.UINT8]: 1,
  [GgufValueType.INT8]: 1,
  [GgufValueType.UINT16]: 2,
  [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4,
  [GgufValueType.INT32]: 4,
  [GgufValueType.FLOAT32]: 4,
  [GgufValueType.BOOL]: 1,
  [GgufValueType.UINT64]: 8,
  [GgufValueType.INT64]: 8,
  [GgufValueType.FLOAT64]: 8,
};

/** A metadata value as a parsed file holds it: a value, or a large array left unparsed ({@link GgufArrayRef}). */
export type GgufMetadataValue = GgufValue | GgufArrayRef;

/** How many array elements one parse may still build as JS values (shared by all arrays of a header). */
export interface MaterializeBudget {
  left: number;
}

/** 64-bit integers become numbers when safe, bigints otherwise. */
function int64Value(v: bigint): number | bigint {
  return v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : v;
}

export function isKnownValueType(t: number): t is GgufValueType {
  return Number.isInteger(t) && t >= 0 && t <= GgufValueType.FLOAT64;
}

function readScalar(c: Cursor, type: GgufScalarType, what: string): GgufValue {
  switch (type) {
    case GgufValueType.UINT8:
      return c.u8(what);
    case GgufValueType.INT8:
      return c.i8(what);
    case GgufValueType.UINT16:
      return c.u16(what);
    case GgufValueType.INT16:
      return c.i16(what);
    case GgufValueType.UINT32:
      return c.u32(what);
    case GgufValueType.INT32:
      return c.i32(what);
    case GgufValueType.FLOAT32:
      return c.f32(what);
    case GgufValueType.FLOAT64:
      return c.f64(what);
    case GgufValueType.UINT64:
      return int64Value(c.u64(what));
    case GgufValueType.INT64:
      return int64Value(c.i64(what));
    case GgufValueType.BOOL: {
      const b = c.u8(what);
      if (b > 1) throw new GgufError("bad_type", `${what} is a bool with byte value ${b} (must be 0 or 1)`);
      return b === 1;
    }
    case GgufValueType.STRING:
      return c.string(what);
  }
}

/**
 * Walks over one value without building it (checking every length, type and bool byte as the parse would).
 * Used for arrays left unparsed and for measuring a header before parsing it.
 */
export function skipValue(c: Cursor, lim: GgufLimits, type: number, key: string, depth: number): void {
  if (!isKnownValueType(type)) throw new GgufError("bad_type", `metadata ${q(key)} has unknown value type ${type}`);
  const what = `value of metadata ${q(key)}`;
  if (type === GgufValueType.STRING) {
    c.skipString(what);
    return;
  }
  if (type !== GgufValueType.ARRAY) {
    if (type === GgufValueType.BOOL) readScalar(c, type, what);
    else c.skip(SCALAR_SIZES[type]!, what);
    return;
  }
  const { elemType, n } = arrayHeader(c, lim, key, depth);
  if (elemType === GgufValueType.STRING) {
    c.skipStrings(n, what);
  } else if (elemType === GgufValueType.ARRAY) {
    for (let i = 0; i < n; i++) skipValue(c, lim, GgufValueType.ARRAY, key, depth + 1);
  } else if (elemType === GgufValueType.BOOL) {
    c.need(n, `array of ${n} values in metadata ${q(key)}`);
    for (let i = 0; i < n; i++) readScalar(c, GgufValueType.BOOL, what);
  } else {
    c.skip(n * SCALAR_SIZES[elemType]!, `array of ${n} values in metadata ${q(key)}`);
  }
}

/** Reads an array's element type and length, checking nesting, type and limits. */
function arrayHeader(c: Cursor, lim: GgufLimits, key: string, depth: number): { elemType: GgufValueType; n: number } {
  if (depth + 1 > lim.maxArrayNesting) {
    throw new GgufError(
      "limit_exceeded",
      `metadata ${q(key)} nests arrays ${depth + 1} deep, above maxArrayNesting (${lim.maxArrayNesting})`,
    );
  }
  const elemType = c.u32(`element type of metadata ${q(key)}`);
  if (!isKnownValueType(elemType)) {
    throw new GgufError("bad_type", `metadata ${q(key)} is an array of unknown value type ${elemType}`);
  }
  const n = c.count(`array length of metadata ${q(key)}`, lim.maxArrayLength, "maxArrayLength");
  // The smallest possible encoding of n elements must fit before any loop over them.
  const minElem =
    elemType === GgufValueType.STRING ? 8 : elemType === GgufValueType.ARRAY ? 12 : SCALAR_SIZES[elemType]!;
  c.mustFit(
    n * minElem,
    `array of ${n} ${elemType === GgufValueType.ARRAY ? "arrays" : "values"} in metadata ${q(key)}`,
  );
  return { elemType, n };
}

/**
 * Reads one value. Arrays longer than `lim.maxMaterializedArray`, or beyond what `budget` has left, are not
 * built: they come back as a {@link GgufArrayRef} over their bytes (validated all the same).
 */
export function readValue(
  c: Cursor,
  lim: GgufLimits,
  type: number,
  key: string,
  depth: number,
  budget: MaterializeBudget,
): { value: GgufMetadataValue; info: GgufTypeInfo } {
  const what = `value of metadata ${q(key)}`;
  if (!isKnownValueType(type)) {
    throw new GgufError("bad_type", `metadata ${q(key)} has unknown value type ${type}`);
  }
  if (type !== GgufValueType.ARRAY) return { value: readScalar(c, type, what), info: { type } };

  const start = c.pos;
  const { elemType, n } = arrayHeader(c, lim, key, depth);
  if (n > lim.maxMaterializedArray || n > budget.left) {
    c.pos = start;
    skipValue(c, lim, GgufValueType.ARRAY, key, depth);
    const ref = new GgufArrayRef(c.slice(start, c.pos), n, elemType, key, depth, lim);
    const info: GgufTypeInfo =
      elemType === GgufValueType.ARRAY
        ? { type: GgufValueType.ARRAY, element: { type: GgufValueType.ARRAY, element: { type: GgufValueType.UINT8 } } }
        : { type: GgufValueType.ARRAY, element: { type: elemType } };
    return { value: ref, info };
  }
  budget.left -= n;
  const out: GgufValue[] = new Array<GgufValue>(n);
  if (elemType === GgufValueType.ARRAY) {
    let element: GgufTypeInfo = { type: GgufValueType.ARRAY, element: { type: GgufValueType.UINT8 } };
    for (let i = 0; i < n; i++) {
      const inner = readValue(c, lim, GgufValueType.ARRAY, key, depth + 1, budget);
      if (inner.value instanceof GgufArrayRef) {
        // An inner array too large to build: the whole outer array stays unparsed.
        c.pos = start;
        return readValue(c, lim, type, key, depth, { left: 0 });
      }
      if (i === 0) element = inner.info;
      out[i] = inner.value;
    }
    return { value: out, info: { type: GgufValueType.ARRAY, element } };
  }
  if (elemType !== GgufValueType.STRING) {
    // Fixed-size elements: the whole array must be present before the loop starts.
    c.need(n * (SCALAR_SIZES[elemType] ?? 1), `array of ${n} values in metadata ${q(key)}`);
  }
  for (let i = 0; i < n; i++) out[i] = readScalar(c, elemType, what);
  return { value: out, info: { type: GgufValueType.ARRAY, element: { type: elemType } } };
}

/**
 * A metadata array the reader did not build (it is larger than the caller wanted in memory, e.g. a 256k-token
 * vocabulary on the daemon's main thread): its length and element type, and its elements on demand, decoded from
 * the header bytes it keeps. Shown as `"[N items]"` by JSON.
 */
export class GgufArrayRef {
  constructor(
    /** The array's encoding: element type, length, elements. */
    private readonly bytes: Buffer,
    /** Number of elements. */
    readonly length: number,
    /** Value type of the elements (GgufValueType). */
    readonly elementType: GgufValueType,
    private readonly key: string,
    private readonly depth: number,
    private readonly limits: GgufLimits,
  ) {}

  /** The elements one at a time (nested arrays as arrays). */
  *[Symbol.iterator](): Generator<GgufValue> {
    const c = this.#cursor();
    const what = `value of metadata ${q(this.key)}`;
    for (let i = 0; i < this.length; i++) {
      if (this.elementType === GgufValueType.ARRAY) {
        const budget = { left: Infinity };
        yield materialize(readValue(c, this.limits, GgufValueType.ARRAY, this.key, this.depth + 1, budget).value);
      } else {
        yield readScalar(c, this.elementType as GgufScalarType, what);
      }
    }
  }

  /** Builds the whole array (only when the caller accepts the memory). */
  toArray(): GgufValue[] {
    return [...this];
  }

  /**
   * For arrays of strings: calls `fn` with each element's index and where its UTF-8 bytes lie in `bytes` (a buffer
   * shared by all calls: read it, do not keep it) without building a string or a view per element. `start - 8` is
   * the offset {@link stringBytesAt} takes.
   */
  forEachStringSpan(fn: (index: number, bytes: Buffer, start: number, end: number) => void): void {
    if (this.elementType !== GgufValueType.STRING) throw new TypeError("not an array of strings");
    const b = this.bytes;
    let pos = 12; // element type (u32) and length (u64), already known
    for (let i = 0; i < this.length; i++) {
      // Lengths were checked when the array was walked: below 2^32 and inside the bytes.
      const len = b.readUInt32LE(pos);
      fn(i, b, pos + 8, pos + 8 + len);
      pos += 8 + len;
    }
  }

  /** The bytes of the string element whose length field is at `offset` (see {@link forEachStringSpan}). */
  stringBytesAt(offset: number): Buffer {
    const len = Number(this.bytes.readBigUInt64LE(offset));
    return this.bytes.subarray(offset + 8, offset + 8 + len);
  }

  toJSON(): string {
    return `[${this.length} items]`;
  }

  #cursor(): Cursor {
    const c = new Cursor(this.bytes, this.bytes.length, { ...this.limits, maxHeaderBytes: Infinity });
    c.pos = 12; // element type (u32) and length (u64), already known
    return c;
  }
}

/** True for arrays, built or not. */
export function isArrayValue(v: unknown): v is GgufValue[] | GgufArrayRef {
  return Array.isArray(v) || v instanceof GgufArrayRef;
}

/** The value as plain JS (builds arrays left unparsed). */
export function materialize(v: GgufMetadataValue): GgufValue {
  return v instanceof GgufArrayRef ? v.toArray() : v;
}
