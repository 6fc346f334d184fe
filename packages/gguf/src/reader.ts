import { open, type FileHandle } from "node:fs/promises";
import { Cursor, NeedMore, q } from "./byte-cursor.js";
import { GgufError } from "./errors.js";
import { ggmlTensorBytes, ggmlTypeInfo } from "./ggml-types.js";
import {
  DEFAULT_GGUF_LIMITS,
  GgufValueType,
  type GgufLimits,
  type GgufTensorInfo,
  type GgufTypeInfo,
} from "./types.js";
import type { GgufFile } from "./gguf-file.js";
import { readValue, skipValue, type GgufMetadataValue } from "./values.js";

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
    // First the header's extent, walking counts and lengths only (nothing is built, limits apply), reading more
    // of the file as needed; then one parse of exactly those bytes.
    let buf: Buffer = Buffer.alloc(0);
    let want = Math.min(fileSize, INITIAL_READ_BYTES);
    for (;;) {
      buf = await readPrefix(fh, buf, want, path);
      try {
        const end = headerExtent(buf, fileSize, lim);
        return parseHeader(buf.subarray(0, end), fileSize, lim);
      } catch (e) {
        if (!(e instanceof NeedMore)) throw e;
        // headerExtent guarantees e.end <= min(fileSize, maxHeaderBytes).
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
  const lim = resolveLimits(limits);
  try {
    return parseHeader(view.subarray(0, headerExtent(view, fileSize, lim)), fileSize, lim);
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

/** Parses and validates; throws GgufError, or NeedMore when `buf` is a prefix too short for the header. */
function parseHeader(buf: Buffer, fileSize: number, lim: GgufLimits): GgufFile {
  const c = new Cursor(buf, fileSize, lim);
  c.need(4, "magic");
  if (buf.toString("latin1", 0, 4) !== "GGUF") {
    throw badMagic(buf);
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

  const metadata = Object.create(null) as Record<string, GgufMetadataValue>;
  const metadataTypes = Object.create(null) as Record<string, GgufTypeInfo>;
  const budget = { left: lim.maxMaterializedTotal };
  for (let i = 0; i < nKv; i++) {
    const key = c.string(`key of metadata entry #${i}`);
    if (Object.prototype.hasOwnProperty.call(metadata, key)) {
      throw new GgufError("duplicate", `metadata key ${q(key)} appears twice (second time as entry #${i})`);
    }
    const type = c.u32(`value type of metadata ${q(key)}`);
    const { value, info } = readValue(c, lim, type, key, 0, budget);
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

/** Magic numbers of llama.cpp's formats before GGUF, named in the refusal. */
const LEGACY_MAGICS = ["GGML", "GGMF", "GGJT", "lmgg", "fmgg", "tjgg"];

/**
 * The refusal of a file that is not GGUF. It quotes the bytes only when they are a known older llama.cpp magic:
 * the file may be anything (an HTTP answer, a file someone should not read), and errors must not leak its content.
 */
function badMagic(buf: Buffer): GgufError {
  const magic = buf.toString("latin1", 0, 4);
  return new GgufError(
    "bad_magic",
    LEGACY_MAGICS.includes(magic)
      ? `bad magic ${JSON.stringify(magic)}: an older llama.cpp format (expected "GGUF"); convert it with llama.cpp`
      : `not a GGUF file: it does not start with the bytes "GGUF"`,
  );
}

/**
 * Bytes from the start of the file to the end of the tensor infos, found by walking counts and lengths without
 * building any value. Enforces every count, length and nesting limit and `maxHeaderBytes`; throws NeedMore when
 * `buf` holds less of the file than the header needs.
 */
function headerExtent(buf: Buffer, fileSize: number, lim: GgufLimits): number {
  const c = new Cursor(buf, fileSize, lim);
  c.need(4, "magic");
  if (buf.toString("latin1", 0, 4) !== "GGUF") throw badMagic(buf);
  c.pos = 4;
  const version = c.u32("version");
  if (version !== 2 && version !== 3) return c.pos; // parseHeader explains
  const nTensors = c.count("tensor count", lim.maxTensors, "maxTensors");
  const nKv = c.count("metadata entry count", lim.maxMetadataEntries, "maxMetadataEntries");
  c.mustFit(nKv * MIN_KV_BYTES, `${nKv} metadata entries`);
  for (let i = 0; i < nKv; i++) {
    const key = c.string(`key of metadata entry #${i}`); // for messages: keys are few and short
    const type = c.u32(`value type of metadata ${q(key)}`);
    skipValue(c, lim, type, key, 0);
  }
  c.mustFit(nTensors * MIN_TENSOR_INFO_BYTES, `${nTensors} tensor infos`);
  for (let i = 0; i < nTensors; i++) {
    const name = q(c.string(`name of tensor #${i}`));
    const nDims = c.u32(`dimension count of tensor ${name}`);
    if (nDims < 1 || nDims > GGML_MAX_DIMS) return c.pos; // parseHeader explains
    c.skip(nDims * 8 + 4 + 8, `dimensions, type and offset of tensor ${name}`);
  }
  return c.pos;
}

function resolveAlignment(metadata: Record<string, GgufMetadataValue>, types: Record<string, GgufTypeInfo>): number {
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
