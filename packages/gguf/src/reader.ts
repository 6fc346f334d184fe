import { open, type FileHandle } from "node:fs/promises";
import { Cursor, NeedMore, q } from "./byte-cursor.js";
import { GgufError } from "./errors.js";
import { ggmlTensorBytes, ggmlTypeInfo } from "./ggml-types.js";
import {
  DEFAULT_GGUF_LIMITS,
  GgufValueType,
  type GgufFile,
  type GgufLimits,
  type GgufScalarType,
  type GgufTensorInfo,
  type GgufTypeInfo,
  type GgufValue,
} from "./types.js";

/** Bytes read first by {@link readGguf}; the read grows (doubling) until the header fits. */
const INITIAL_READ_BYTES = 1024 * 1024;
/** llama.cpp's GGML_MAX_NAME: tensor names must be shorter. */
const GGML_MAX_NAME = 64;
/** llama.cpp's GGML_MAX_DIMS. */
const GGML_MAX_DIMS = 4;
const DEFAULT_ALIGNMENT = 32;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const INT64_MAX = (1n << 63n) - 1n;
/** Smallest possible encodings, used to reject impossible counts before looping over them. */
const MIN_KV_BYTES = 8 + 4 + 1; // key length, type, one u8
const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8; // name length, 1-byte name, n_dims, one dim, type, offset
const SCALAR_SIZES: Readonly<Record<number, number>> = {
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

/**
 * Reads and validates the header of a GGUF file. Only the header region is read (starting with 1 MiB and
 * growing as needed up to `limits.maxHeaderBytes`), never the tensor data, so files of any size are cheap.
 *
 * @throws {GgufError} on any invalid or hostile header, or (code "io") when the file cannot be read.
 */
export async function readGguf(path: string, limits?: Partial<GgufLimits>): Promise<GgufFile> {
  const lim = resolveLimits(limits);
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (cause) {
    throw new GgufError("io", `cannot open GGUF file ${JSON.stringify(path)}: ${errorMessage(cause)}`, { cause });
  }
  try {
    const fileSize = (await fh.stat()).size;
    let buf: Buffer = Buffer.alloc(0);
    let want = Math.min(fileSize, INITIAL_READ_BYTES);
    for (;;) {
      buf = await readPrefix(fh, buf, want, path);
      try {
        return parseHeader(buf, fileSize, lim);
      } catch (e) {
        if (!(e instanceof NeedMore)) throw e;
        // parseHeader guarantees e.end <= min(fileSize, maxHeaderBytes).
        want = Math.min(fileSize, lim.maxHeaderBytes, Math.max(e.end, buf.length * 2));
      }
    }
  } finally {
    await fh.close();
  }
}

/**
 * Validates a GGUF header held in memory. `buf` holds the file's first bytes (all of them, or at least the
 * whole header); `fileSize` is the size of the whole file, used to check that tensor data lies inside it.
 * Never throws anything but {@link GgufError}; meant for fuzzers and for files already in memory.
 */
export function parseGgufBuffer(buf: Buffer, fileSize: number, limits?: Partial<GgufLimits>): GgufFile {
  const view = buf.length > fileSize ? buf.subarray(0, fileSize) : buf;
  try {
    return parseHeader(view, fileSize, resolveLimits(limits));
  } catch (e) {
    if (e instanceof NeedMore) {
      throw new GgufError(
        "truncated",
        `header continues to byte ${e.end} but the buffer holds only ${view.length} of the file's ${fileSize} bytes`,
      );
    }
    throw e;
  }
}

function resolveLimits(limits: Partial<GgufLimits> | undefined): GgufLimits {
  return { ...DEFAULT_GGUF_LIMITS, ...limits };
}

async function readPrefix(fh: FileHandle, have: Buffer, want: number, path: string): Promise<Buffer> {
  if (want <= have.length) return have;
  const next = Buffer.alloc(want);
  have.copy(next, 0);
  let filled = have.length;
  while (filled < want) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await fh.read(next, filled, want - filled, filled));
    } catch (cause) {
      throw new GgufError("io", `cannot read GGUF file ${JSON.stringify(path)}: ${errorMessage(cause)}`, { cause });
    }
    if (bytesRead === 0) {
      throw new GgufError(
        "truncated",
        `file ${JSON.stringify(path)} shrank while being read (ended at byte ${filled})`,
      );
    }
    filled += bytesRead;
  }
  return next;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** 64-bit integers become numbers when safe, bigints otherwise. */
function int64Value(v: bigint): number | bigint {
  return v >= -MAX_SAFE && v <= MAX_SAFE ? Number(v) : v;
}

function isKnownValueType(t: number): t is GgufValueType {
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

function readValue(
  c: Cursor,
  lim: GgufLimits,
  type: number,
  key: string,
  depth: number,
): { value: GgufValue; info: GgufTypeInfo } {
  const what = `value of metadata ${q(key)}`;
  if (!isKnownValueType(type)) {
    throw new GgufError("bad_type", `metadata ${q(key)} has unknown value type ${type}`);
  }
  if (type !== GgufValueType.ARRAY) return { value: readScalar(c, type, what), info: { type } };

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
  const out: GgufValue[] = new Array<GgufValue>(n);
  if (elemType === GgufValueType.ARRAY) {
    c.mustFit(n * 12, `array of ${n} arrays in metadata ${q(key)}`);
    let element: GgufTypeInfo = { type: GgufValueType.ARRAY, element: { type: GgufValueType.UINT8 } };
    for (let i = 0; i < n; i++) {
      const inner = readValue(c, lim, GgufValueType.ARRAY, key, depth + 1);
      if (i === 0) element = inner.info;
      out[i] = inner.value;
    }
    return { value: out, info: { type: GgufValueType.ARRAY, element } };
  }
  if (elemType === GgufValueType.STRING) {
    c.mustFit(n * 8, `array of ${n} strings in metadata ${q(key)}`);
  } else {
    // Fixed-size elements: the whole array must be present before the loop starts.
    c.need(n * (SCALAR_SIZES[elemType] ?? 1), `array of ${n} values in metadata ${q(key)}`);
  }
  for (let i = 0; i < n; i++) out[i] = readScalar(c, elemType, what);
  return { value: out, info: { type: GgufValueType.ARRAY, element: { type: elemType } } };
}

/** Parses and validates; throws GgufError, or NeedMore when `buf` is a prefix too short for the header. */
function parseHeader(buf: Buffer, fileSize: number, lim: GgufLimits): GgufFile {
  const c = new Cursor(buf, fileSize, lim);
  c.need(4, "magic");
  if (buf.toString("latin1", 0, 4) !== "GGUF") {
    throw new GgufError("bad_magic", `bad magic ${JSON.stringify(buf.toString("latin1", 0, 4))} (expected "GGUF")`);
  }
  c.pos = 4;
  const version = c.u32("version");
  if (version !== 2 && version !== 3) {
    const hint = version >= 0x01000000 ? " (a big-endian GGUF?)" : "";
    throw new GgufError("unsupported_version", `unsupported GGUF version ${version}${hint}; supported: 2, 3`);
  }
  const nTensors = c.count("tensor count", lim.maxTensors, "maxTensors");
  const nKv = c.count("metadata entry count", lim.maxMetadataEntries, "maxMetadataEntries");
  c.mustFit(nKv * MIN_KV_BYTES, `${nKv} metadata entries`);

  const metadata = Object.create(null) as Record<string, GgufValue>;
  const metadataTypes = Object.create(null) as Record<string, GgufTypeInfo>;
  for (let i = 0; i < nKv; i++) {
    const key = c.string(`key of metadata entry #${i}`);
    if (Object.prototype.hasOwnProperty.call(metadata, key)) {
      throw new GgufError("duplicate", `metadata key ${q(key)} appears twice (second time as entry #${i})`);
    }
    const type = c.u32(`value type of metadata ${q(key)}`);
    const { value, info } = readValue(c, lim, type, key, 0);
    metadata[key] = value;
    metadataTypes[key] = info;
  }

  const alignment = resolveAlignment(metadata, metadataTypes);
  c.mustFit(nTensors * MIN_TENSOR_INFO_BYTES, `${nTensors} tensor infos`);

  interface Pending extends GgufTensorInfo {
    relOffset: number;
  }
  const pending: Pending[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const { text: name, bytes: nameBytes } = c.stringBytes(`name of tensor #${i}`);
    if (nameBytes === 0) throw new GgufError("bad_tensor", `tensor #${i} has an empty name`);
    if (nameBytes >= GGML_MAX_NAME) {
      throw new GgufError(
        "bad_tensor",
        `tensor name ${q(name)} is ${nameBytes} bytes; llama.cpp allows at most ${GGML_MAX_NAME - 1}`,
      );
    }
    if (names.has(name)) throw new GgufError("duplicate", `tensor name ${q(name)} appears twice (second as #${i})`);
    names.add(name);

    const nDims = c.u32(`dimension count of tensor ${q(name)}`);
    if (nDims < 1 || nDims > GGML_MAX_DIMS) {
      throw new GgufError("bad_tensor", `tensor ${q(name)} has ${nDims} dimensions (must be 1..${GGML_MAX_DIMS})`);
    }
    const dims: number[] = [];
    let elements = 1n;
    for (let d = 0; d < nDims; d++) {
      const dim = c.u64(`dimension ${d} of tensor ${q(name)}`);
      if (dim === 0n) throw new GgufError("bad_tensor", `tensor ${q(name)} has dimension ${d} equal to 0`);
      if (dim > INT64_MAX)
        throw new GgufError("bad_tensor", `tensor ${q(name)} has dimension ${d} of ${dim} (negative as int64)`);
      elements *= dim;
      if (elements > MAX_SAFE) {
        throw new GgufError(
          "bad_tensor",
          `tensor ${q(name)} element count overflows: dims up to ${d} multiply to ${elements}, above ${Number.MAX_SAFE_INTEGER}`,
        );
      }
      dims.push(Number(dim));
    }
    const type = c.u32(`ggml type of tensor ${q(name)}`);
    const info = ggmlTypeInfo(type);
    if (!info) throw new GgufError("bad_type", `tensor ${q(name)} has unknown ggml type ${type}`);
    if ((dims[0] ?? 0) % info.blockSize !== 0) {
      throw new GgufError(
        "bad_tensor",
        `tensor ${q(name)} of type ${info.name} has rows of ${dims[0]} elements, not a multiple of the block size ${info.blockSize}`,
      );
    }
    const size = ggmlTensorBytes(info, elements);
    if (size > MAX_SAFE) {
      throw new GgufError("out_of_range", `tensor ${q(name)} would take ${size} bytes, more than any file can hold`);
    }
    const relOffset = c.u64(`data offset of tensor ${q(name)}`);
    if (relOffset > MAX_SAFE) {
      throw new GgufError("out_of_range", `tensor ${q(name)} has data offset ${relOffset}, past the end of any file`);
    }
    if (relOffset % BigInt(alignment) !== 0n) {
      throw new GgufError(
        "bad_alignment",
        `tensor ${q(name)} data offset ${relOffset} is not a multiple of the alignment ${alignment}`,
      );
    }
    pending.push({
      name,
      dims,
      type,
      typeName: info.name,
      offset: 0,
      size: Number(size),
      elements: Number(elements),
      relOffset: Number(relOffset),
    });
  }

  const headerBytes = c.pos;
  const dataOffset = Math.ceil(headerBytes / alignment) * alignment;
  const tensors: GgufTensorInfo[] = pending.map(({ relOffset, ...t }) => {
    const offset = dataOffset + relOffset;
    if (offset + t.size > fileSize) {
      throw new GgufError(
        "out_of_range",
        `tensor ${q(t.name)} data [${offset}, ${offset + t.size}) extends past end of file (${fileSize} bytes)`,
      );
    }
    return { ...t, offset };
  });
  checkOverlaps(tensors);
  return { version, metadata, metadataTypes, tensors, alignment, dataOffset, fileSize, headerBytes };
}

function resolveAlignment(metadata: Record<string, GgufValue>, types: Record<string, GgufTypeInfo>): number {
  if (!Object.prototype.hasOwnProperty.call(metadata, "general.alignment")) return DEFAULT_ALIGNMENT;
  const type = types["general.alignment"]?.type;
  const value = metadata["general.alignment"];
  if (type !== GgufValueType.UINT32 || typeof value !== "number") {
    throw new GgufError("bad_alignment", `general.alignment has value type ${type} (must be uint32, type 4)`);
  }
  if (value === 0 || (value & (value - 1)) !== 0) {
    throw new GgufError("bad_alignment", `general.alignment ${value} is not a power of 2`);
  }
  return value;
}

function checkOverlaps(tensors: readonly GgufTensorInfo[]): void {
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (prev.offset + prev.size > cur.offset) {
      throw new GgufError(
        "overlap",
        `tensor ${q(prev.name)} data [${prev.offset}, ${prev.offset + prev.size}) overlaps tensor ${q(cur.name)} data [${cur.offset}, ${cur.offset + cur.size})`,
      );
    }
  }
}
