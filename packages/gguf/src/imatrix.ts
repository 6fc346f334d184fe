/**
 * Importance-matrix files in llama.cpp's GGUF format (what `llama-imatrix` writes and `llama-quantize --imatrix`
 * reads, `tools/imatrix/imatrix.cpp` and `common/imatrix-loader.cpp` of the pinned release):
 *   metadata  general.type = "imatrix", imatrix.datasets (array of strings), imatrix.chunk_count (u32),
 *             imatrix.chunk_size (u32)
 *   tensors   "<weight name>.in_sum2": F32 [columns, matrices]  sum over tokens of each input column squared
 *             "<weight name>.counts":  F32 [1, matrices]         tokens summed, per matrix (expert)
 * The quantizer uses `in_sum2 / counts` per matrix (1 where a matrix saw no token).
 */
import { open } from "node:fs/promises";
import { GgufError } from "./errors.js";
import { GgmlType } from "./ggml-types.js";
import { readGguf } from "./reader.js";
import type { GgufFile } from "./gguf-file.js";
import type { GgufLimits } from "./types.js";
import { typed, typedArray, writeGguf } from "./writer.js";
import { GgufValueType } from "./types.js";

/** The statistics of one weight tensor. */
export interface ImatrixEntry {
  /** Sums of squared activations: `columns x matrices` values, matrix-major. */
  sums: Float32Array;
  /** Tokens summed, one per matrix (expert); dense weights have one. */
  counts: Float32Array;
}

/** A whole importance matrix. */
export interface Imatrix {
  /** By weight tensor name, e.g. "blk.0.attn_q.weight". */
  entries: Map<string, ImatrixEntry>;
  /** Names of the texts it was computed on. */
  datasets: string[];
  chunkCount: number;
  chunkSize: number;
}

const SUMS = ".in_sum2";
const COUNTS = ".counts";

/** Entry names and their column counts from an imatrix file's header (for checks that need no data). */
export function imatrixShapes(file: GgufFile): Map<string, { columns: number; matrices: number }> {
  const out = new Map<string, { columns: number; matrices: number }>();
  for (const t of file.tensors) {
    if (!t.name.endsWith(SUMS)) continue;
    out.set(t.name.slice(0, -SUMS.length), { columns: t.dims[0]!, matrices: t.dims[1] ?? 1 });
  }
  return out;
}

/**
 * Reads an imatrix GGUF file (header validated by the GGUF reader first).
 * @throws GgufError `bad_metadata` when the file is a GGUF but not an importance matrix, `bad_tensor` when its
 *   sums and counts do not go together.
 */
export async function readImatrix(path: string, limits?: Partial<GgufLimits>): Promise<Imatrix> {
  const file = await readGguf(path, limits);
  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  const fail = (message: string): never => {
    throw new GgufError("bad_tensor", `${path}: ${message}`);
  };
  const sumTensors = file.tensors.filter((t) => t.name.endsWith(SUMS));
  if (sumTensors.length === 0)
    throw new GgufError("bad_metadata", `${path}: no <name>.in_sum2 tensors: not an importance matrix`);
  const fh = await open(path, "r");
  try {
    const readF32 = async (offset: number, count: number): Promise<Float32Array> => {
      const buf = Buffer.alloc(count * 4);
      await fh.read(buf, 0, buf.length, offset);
      return new Float32Array(buf.buffer, buf.byteOffset, count);
    };
    const entries = new Map<string, ImatrixEntry>();
    for (const sums of sumTensors) {
      const name = sums.name.slice(0, -SUMS.length);
      const counts = byName.get(name + COUNTS);
      if (!counts) fail(`${name} has sums but no counts`);
      if (sums.type !== GgmlType.F32 || counts!.type !== GgmlType.F32) fail(`${name}: sums and counts must be F32`);
      const matrices = sums.dims[1] ?? 1;
      if (counts!.elements !== matrices) fail(`${name}: ${counts!.elements} counts for ${matrices} matrices`);
      entries.set(name, {
        sums: await readF32(sums.offset, sums.elements),
        counts: await readF32(counts!.offset, counts!.elements),
      });
    }
    const datasets = file.metadata["imatrix.datasets"];
    return {
      entries,
      datasets: Array.isArray(datasets) ? datasets.filter((d): d is string => typeof d === "string") : [],
      chunkCount: Number(file.metadata["imatrix.chunk_count"] ?? 0),
      chunkSize: Number(file.metadata["imatrix.chunk_size"] ?? 0),
    };
  } finally {
    await fh.close();
  }
}

/** The values the quantizer weighs errors with: `sums / counts` per matrix, 1 where a matrix saw no token. */
export function imatrixWeights(entry: ImatrixEntry): Float32Array {
  const matrices = entry.counts.length;
  const columns = entry.sums.length / matrices;
  const out = new Float32Array(entry.sums.length);
  for (let j = 0; j < matrices; j++) {
    const count = Math.round(entry.counts[j]!);
    for (let i = 0; i < columns; i++) out[j * columns + i] = count > 0 ? entry.sums[j * columns + i]! / count : 1;
  }
  return out;
}

/** Writes an importance matrix as llama-imatrix does (tensors sorted by name, so equal data gives equal files). */
export async function writeImatrix(path: string, imatrix: Imatrix): Promise<void> {
  const tensors = [];
  for (const name of [...imatrix.entries.keys()].sort()) {
    const e = imatrix.entries.get(name)!;
    const matrices = e.counts.length;
    const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    tensors.push({
      name: name + SUMS,
      dims: [e.sums.length / matrices, matrices],
      type: GgmlType.F32,
      data: bytes(e.sums),
    });
    tensors.push({ name: name + COUNTS, dims: [1, matrices], type: GgmlType.F32, data: bytes(e.counts) });
  }
  await writeGguf(path, {
    metadata: {
      "general.type": "imatrix",
      "imatrix.datasets": typedArray(GgufValueType.STRING, imatrix.datasets),
      "imatrix.chunk_count": typed(GgufValueType.UINT32, imatrix.chunkCount),
      "imatrix.chunk_size": typed(GgufValueType.UINT32, imatrix.chunkSize),
    },
    tensors,
  });
}
