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
