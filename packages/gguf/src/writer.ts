import { open, rename, rm } from "node:fs/promises";
import { GgufError } from "./errors.js";
import { ggmlTensorBytes, ggmlTypeInfo } from "./ggml-types.js";
import { GgufValueType, type GgufScalarType, type GgufTypeInfo, type GgufValue } from "./types.js";

/** A metadata value with an explicit GGUF type (e.g. a u64, or an array of f32). */
export interface GgufTypedValue {
  readonly typeInfo: GgufTypeInfo;
  readonly value: GgufValue;
}

/**
 * Metadata to write. Plain values get an inferred type: string -> string, boolean -> bool,
 * integer number -> uint32 (int32 if negative, (u)int64 beyond 32 bits), other number -> float32,
 * bigint -> uint64 (int64 if negative), array -> array of the type inferred over all elements
 * (an empty array is an array of uint32). Use {@link typed} for anything else.
 */
export type GgufMetadataInput = Record<string, GgufValue | GgufTypedValue>;

/** Chunks of a tensor's data, produced lazily so that big tensors never sit in memory whole. */
export type GgufTensorData = Uint8Array | (() => Iterable<Uint8Array> | AsyncIterable<Uint8Array>);

/** One tensor to write. */
export interface GgufTensorInput {
  /** Tensor name (at most 63 bytes). */
  name: string;
  /** Dimensions in ggml order (fastest-varying first). */
  dims: number[];
  /** ggml type id (see GGML_TYPES / GgmlType). */
  type: number;
  /** The encoded data: exactly the tensor's byte size in total. */
  data: GgufTensorData;
}

/** What {@link writeGguf} writes. */
export interface GgufWriteInput {
  metadata: GgufMetadataInput;
  tensors: GgufTensorInput[];
}

/** Options of {@link GgufWriter.write}. */
export interface GgufWriteOptions {
  /** Called after each chunk written with the bytes written so far and the final file size. */
  onProgress?: (written: number, total: number) => void;
}

/** Wraps a value with an explicit GGUF type. */
export function typed(typeInfo: GgufTypeInfo | GgufScalarType, value: GgufValue): GgufTypedValue {
  return { typeInfo: typeof typeInfo === "number" ? ({ type: typeInfo } as GgufTypeInfo) : typeInfo, value };
}

/** An array of the given scalar element type. */
export function typedArray(element: GgufScalarType, value: GgufValue[]): GgufTypedValue {
  return { typeInfo: { type: GgufValueType.ARRAY, element: { type: element } }, value };
}

function isTyped(v: GgufValue | GgufTypedValue): v is GgufTypedValue {
  return typeof v === "object" && v !== null && !Array.isArray(v) && "typeInfo" in v;
}

function inferNumbers(values: readonly (number | bigint)[]): GgufScalarType {
  if (values.some((v) => typeof v === "number" && !Number.isInteger(v))) return GgufValueType.FLOAT32;
  const big = values.map((v) => BigInt(v));
  const min = big.reduce((a, b) => (b < a ? b : a), 0n);
  const max = big.reduce((a, b) => (b > a ? b : a), 0n);
  if (values.some((v) => typeof v === "bigint")) return min < 0n ? GgufValueType.INT64 : GgufValueType.UINT64;
  if (min >= 0n && max <= 0xffffffffn) return GgufValueType.UINT32;
  if (min >= -(2n ** 31n) && max < 2n ** 31n) return GgufValueType.INT32;
  return min < 0n ? GgufValueType.INT64 : GgufValueType.UINT64;
}

/** The type {@link GgufMetadataInput} infers for a plain value. */
export function inferGgufType(value: GgufValue): GgufTypeInfo {
  if (typeof value === "string") return { type: GgufValueType.STRING };
  if (typeof value === "boolean") return { type: GgufValueType.BOOL };
  if (typeof value === "number" || typeof value === "bigint") return { type: inferNumbers([value]) };
  if (value.length === 0) return { type: GgufValueType.ARRAY, element: { type: GgufValueType.UINT32 } };
  const first = value[0]!;
  if (typeof first === "number" || typeof first === "bigint") {
    return { type: GgufValueType.ARRAY, element: { type: inferNumbers(value as (number | bigint)[]) } };
  }
  return { type: GgufValueType.ARRAY, element: inferGgufType(first) };
}

/** Little-endian append-only byte sink for the header. */
class ByteSink {
  private chunks: Buffer[] = [];
  private cur = Buffer.alloc(64 * 1024);
  private used = 0;
  length = 0;

  private room(n: number): Buffer {
    if (this.used + n > this.cur.length) {
      this.chunks.push(this.cur.subarray(0, this.used));
      this.cur = Buffer.alloc(Math.max(64 * 1024, n));
      this.used = 0;
    }
    this.length += n;
    return this.cur;
  }
  u8(v: number): void {
    this.room(1).writeUInt8(v, this.used);
    this.used += 1;
  }
  i8(v: number): void {
    this.room(1).writeInt8(v, this.used);
    this.used += 1;
  }
  u16(v: number): void {
    this.room(2).writeUInt16LE(v, this.used);
    this.used += 2;
  }
  i16(v: number): void {
    this.room(2).writeInt16LE(v, this.used);
    this.used += 2;
  }
  u32(v: number): void {
    this.room(4).writeUInt32LE(v, this.used);
    this.used += 4;
  }
  i32(v: number): void {
    this.room(4).writeInt32LE(v, this.used);
    this.used += 4;
  }
  f32(v: number): void {
    this.room(4).writeFloatLE(v, this.used);
    this.used += 4;
  }
  f64(v: number): void {
    this.room(8).writeDoubleLE(v, this.used);
    this.used += 8;
  }
  u64(v: bigint | number): void {
    this.room(8).writeBigUInt64LE(BigInt(v), this.used);
    this.used += 8;
  }
  i64(v: bigint | number): void {
    this.room(8).writeBigInt64LE(BigInt(v), this.used);
    this.used += 8;
  }
  bytes(b: Buffer): void {
    this.room(b.length);
    b.copy(this.cur, this.used);
    this.used += b.length;
  }
  string(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.bytes(b);
  }
  toBuffer(): Buffer {
    return Buffer.concat([...this.chunks, this.cur.subarray(0, this.used)]);
  }
}

function badValue(key: string, expected: string, value: unknown): GgufError {
  return new GgufError("bad_type", `metadata ${JSON.stringify(key)}: expected ${expected}, got ${typeof value}`);
}

function writeValue(out: ByteSink, key: string, info: GgufTypeInfo, value: GgufValue): void {
  const int = (v: GgufValue): number => {
    if (typeof v !== "number" || !Number.isInteger(v)) throw badValue(key, "an integer", v);
    return v;
  };
  const float = (v: GgufValue): number => {
    if (typeof v !== "number") throw badValue(key, "a number", v);
    return v;
  };
  const big = (v: GgufValue): bigint => {
    if (typeof v === "bigint") return v;
    return BigInt(int(v));
  };
  switch (info.type) {
    case GgufValueType.UINT8:
      return out.u8(int(value));
    case GgufValueType.INT8:
      return out.i8(int(value));
    case GgufValueType.UINT16:
      return out.u16(int(value));
    case GgufValueType.INT16:
      return out.i16(int(value));
    case GgufValueType.UINT32:
      return out.u32(int(value));
    case GgufValueType.INT32:
      return out.i32(int(value));
    case GgufValueType.FLOAT32:
      return out.f32(float(value));
    case GgufValueType.FLOAT64:
      return out.f64(float(value));
    case GgufValueType.UINT64:
      return out.u64(big(value));
    case GgufValueType.INT64:
      return out.i64(big(value));
    case GgufValueType.BOOL:
      if (typeof value !== "boolean") throw badValue(key, "a boolean", value);
      return out.u8(value ? 1 : 0);
    case GgufValueType.STRING:
      if (typeof value !== "string") throw badValue(key, "a string", value);
      return out.string(value);
    case GgufValueType.ARRAY: {
      if (!Array.isArray(value)) throw badValue(key, "an array", value);
      out.u32(info.element.type);
      out.u64(value.length);
      for (const v of value) {
        // Inner arrays of nested arrays carry their own element type.
        const elem = info.element.type === GgufValueType.ARRAY && Array.isArray(v) ? inferGgufType(v) : info.element;
        writeValue(out, key, elem, v);
      }
      return;
    }
  }
}

const DEFAULT_ALIGNMENT = 32;

/**
 * Builds a GGUF v3 file: set metadata, add tensors, then {@link GgufWriter.write}. Tensor data is streamed
 * to disk from each tensor's producer; only the header is built in memory.
 */
export class GgufWriter {
  private readonly metadata = new Map<string, GgufTypedValue>();
  private readonly tensors: GgufTensorInput[] = [];
  private readonly tensorNames = new Set<string>();

  /** Sets (or replaces) a metadata value; plain values get the type {@link inferGgufType} gives. */
  setMetadata(key: string, value: GgufValue | GgufTypedValue): this {
    this.metadata.set(key, isTyped(value) ? value : { typeInfo: inferGgufType(value), value });
    return this;
  }

  /** Adds a tensor; its data is read from `tensor.data` only during {@link write}. */
  addTensor(tensor: GgufTensorInput): this {
    if (this.tensorNames.has(tensor.name)) {
      throw new GgufError("duplicate", `tensor ${JSON.stringify(tensor.name)} added twice`);
    }
    const nameBytes = Buffer.byteLength(tensor.name);
    if (nameBytes === 0 || nameBytes > 63) {
      throw new GgufError(
        "bad_tensor",
        `tensor name ${JSON.stringify(tensor.name)} is ${nameBytes} bytes (must be 1..63)`,
      );
    }
    const info = ggmlTypeInfo(tensor.type);
    if (!info)
      throw new GgufError("bad_type", `tensor ${JSON.stringify(tensor.name)}: unknown ggml type ${tensor.type}`);
    if (
      tensor.dims.length < 1 ||
      tensor.dims.length > 4 ||
      !tensor.dims.every((d) => Number.isSafeInteger(d) && d > 0)
    ) {
      throw new GgufError(
        "bad_tensor",
        `tensor ${JSON.stringify(tensor.name)}: invalid dims [${tensor.dims.join(", ")}]`,
      );
    }
    if (tensor.dims[0]! % info.blockSize !== 0) {
      throw new GgufError(
        "bad_tensor",
        `tensor ${JSON.stringify(tensor.name)}: first dim ${tensor.dims[0]} is not a multiple of ${info.name}'s block size ${info.blockSize}`,
      );
    }
    this.tensorNames.add(tensor.name);
    this.tensors.push(tensor);
    return this;
  }

  /** The data alignment: general.alignment when set, else 32. */
  get alignment(): number {
    const v = this.metadata.get("general.alignment")?.value;
    return typeof v === "number" ? v : DEFAULT_ALIGNMENT;
  }

  /** Byte size of a tensor's data. */
  static tensorBytes(tensor: Pick<GgufTensorInput, "dims" | "type">): number {
    const info = ggmlTypeInfo(tensor.type);
    if (!info) throw new GgufError("bad_type", `unknown ggml type ${tensor.type}`);
    return Number(
      ggmlTensorBytes(
        info,
        tensor.dims.reduce((a, d) => a * BigInt(d), 1n),
      ),
    );
  }

  /** Encodes the header (through the alignment padding before the data section). */
  encodeHeader(): Buffer {
    const alignment = this.alignment;
    if (alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
      throw new GgufError("bad_alignment", `general.alignment ${alignment} is not a power of 2`);
    }
    const out = new ByteSink();
    out.bytes(Buffer.from("GGUF", "latin1"));
    out.u32(3);
    out.u64(this.tensors.length);
    out.u64(this.metadata.size);
    for (const [key, { typeInfo, value }] of this.metadata) {
      out.string(key);
      out.u32(typeInfo.type);
      writeValue(out, key, typeInfo, value);
    }
    let offset = 0;
    for (const t of this.tensors) {
      out.string(t.name);
      out.u32(t.dims.length);
      for (const d of t.dims) out.u64(d);
      out.u32(t.type);
      out.u64(offset);
      offset += padTo(GgufWriter.tensorBytes(t), alignment);
    }
    const pad = padTo(out.length, alignment) - out.length;
    if (pad > 0) out.bytes(Buffer.alloc(pad));
    return out.toBuffer();
  }

  /**
   * Writes the file: to `<path>.partial-<pid>` first, renamed onto `path` when complete, so a crash never
   * leaves a half-written model under the final name.
   */
  async write(path: string, options: GgufWriteOptions = {}): Promise<void> {
    const alignment = this.alignment;
    const header = this.encodeHeader();
    const total = header.length + this.tensors.reduce((a, t) => a + padTo(GgufWriter.tensorBytes(t), alignment), 0);
    const { onProgress } = options;
    const tmp = `${path}.partial-${process.pid}`;
    const fh = await open(tmp, "w");
    let ok = false;
    try {
      let pos = 0;
      const put = async (b: Uint8Array): Promise<void> => {
        let done = 0;
        while (done < b.length) {
          const { bytesWritten } = await fh.write(b, done, b.length - done, pos);
          done += bytesWritten;
          pos += bytesWritten;
        }
        onProgress?.(pos, total);
      };
      await put(header);
      for (const t of this.tensors) {
        const expected = GgufWriter.tensorBytes(t);
        let written = 0;
        const chunks = typeof t.data === "function" ? t.data() : [t.data];
        for await (const chunk of chunks) {
          written += chunk.length;
          if (written > expected) break;
          await put(chunk);
        }
        if (written !== expected) {
          throw new GgufError(
            "bad_tensor",
            `tensor ${JSON.stringify(t.name)}: data producer gave ${written > expected ? "more than" : written} bytes, expected ${expected}`,
          );
        }
        const pad = padTo(expected, alignment) - expected;
        if (pad > 0) await put(Buffer.alloc(pad));
      }
      ok = true;
    } finally {
      await fh.close();
      if (!ok) await rm(tmp, { force: true });
    }
    await rename(tmp, path);
  }
}

/** The bytes of one metadata entry (key, value type, value), as they appear in a GGUF header. */
export function encodeMetadataEntry(key: string, value: GgufValue | GgufTypedValue): Buffer {
  const { typeInfo, value: v } = isTyped(value) ? value : { typeInfo: inferGgufType(value), value };
  const out = new ByteSink();
  out.string(key);
  out.u32(typeInfo.type);
  writeValue(out, key, typeInfo, v);
  return out.toBuffer();
}

function padTo(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/** Writes a GGUF v3 file from metadata and tensors (see {@link GgufWriter}). */
export async function writeGguf(path: string, input: GgufWriteInput, options?: GgufWriteOptions): Promise<void> {
  const w = new GgufWriter();
  for (const key of Object.keys(input.metadata)) w.setMetadata(key, input.metadata[key]!);
  for (const t of input.tensors) w.addTensor(t);
  await w.write(path, options);
}
