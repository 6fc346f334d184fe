/**
 * `llmos imatrix`: the importance matrix of a model over a text, as llama-imatrix computes it. llama.cpp calls an
 * eval callback for every node of the decode graph; for each matrix product of a `blk.*` weight with at least 16
 * input rows, the squares of the input's columns are summed per weight, and the rows counted. The chunks are the
 * perplexity chunks (`evaluate-text.ts`). Dense models only: expert products (MUL_MAT_ID) are not collected.
 */
import koffi from "koffi";
import type { Imatrix, ImatrixEntry } from "@llmos/gguf";
import { LlmosError } from "../../errors.js";
import type { Bindings, Ptr } from "./bindings.js";
import { ChunkEvaluator } from "./chunk-evaluator.js";
import { chunkCount } from "./evaluate-text.js";
import { GgmlEvalCallback, GgmlTensor, quantizeApi, type QuantizeApi } from "./quantize-bindings.js";

/** ggml type id of F32. */
const GGML_TYPE_F32 = 0;

interface TensorView {
  type: number;
  buffer: Ptr | null;
  ne: ArrayLike<number | bigint>;
  nb: ArrayLike<number | bigint>;
  op: number;
  src: Array<Ptr | null>;
  data: Ptr | null;
  name: number[] | string;
}

/** Options of {@link computeImatrix}. */
export interface ComputeImatrixOptions {
  modelPath: string;
  text: string;
  /** Recorded in the file's `imatrix.datasets`. */
  datasetName: string;
  contextSize: number;
  threads: number;
  maxChunks?: number;
}

/** `CUDA0#blk.0.attn_k.weight#0` -> `blk.0.attn_k.weight` (llama-imatrix's filter_tensor_name). */
export function weightName(name: string): string {
  const p = name.indexOf("#");
  if (p < 0) return name;
  const q = name.indexOf("#", p + 1);
  return q < 0 ? name.slice(p + 1) : name.slice(p + 1, q);
}

/** Sums of squared inputs per weight, filled by the eval callback. */
class Collector {
  readonly sums = new Map<string, Float64Array>();
  readonly counts = new Map<string, number>();
  private readonly matrices = new Map<string, number>();
  private readonly mulMat: number;

  constructor(
    private readonly api: QuantizeApi,
    maxOp = 128,
  ) {
    let op = -1;
    for (let i = 0; i < maxOp && op < 0; i++) if (api.ggml_op_name(i) === "MUL_MAT") op = i;
    if (op < 0) throw new Error("ggml: no MUL_MAT op found");
    this.mulMat = op;
  }

  /** The `ggml_backend_sched_eval_callback`: ask -> do we want this node; else read its input. */
  readonly callback = (tensor: Ptr, ask: boolean): boolean => {
    const t = koffi.decode(tensor, GgmlTensor) as TensorView;
    if (t.op !== this.mulMat) return !ask; // never asked for anything else; keep computing
    const src0 = koffi.decode(t.src[0]!, GgmlTensor) as TensorView;
    const src1 = koffi.decode(t.src[1]!, GgmlTensor) as TensorView;
    const name = weightName(cString(src0.name));
    if (ask) return Number(src1.ne[1]) >= 16 && src1.type === GGML_TYPE_F32 && name.startsWith("blk.");
    this.accumulate(name, src0, src1, t.src[1]!);
    return true;
  };

  private accumulate(name: string, src0: TensorView, src1: TensorView, src1Ptr: Ptr): void {
    // koffi decodes int64/size_t arrays as BigInt64Array-like values: convert element by element.
    const ne = Array.from(src1.ne as ArrayLike<number | bigint>, Number);
    const nb = Array.from(src1.nb as ArrayLike<number | bigint>, Number);
    const ne0 = Array.from(src0.ne, Number);
    const nMat = ne0[2]! * ne0[3]!;
    const columns = ne[0]!;
    let sums = this.sums.get(name);
    if (!sums) this.sums.set(name, (sums = new Float64Array(columns * nMat)));
    this.matrices.set(name, nMat);
    const bytes = nb[3]! * ne[3]!;
    let data: ArrayBuffer;
    if (src1.buffer && src1.data && this.api.ggml_backend_buffer_is_host(src1.buffer)) {
      data = koffi.view(src1.data, bytes);
    } else {
      // On a GPU: copy the input to host memory first.
      const copy = Buffer.alloc(bytes);
      this.api.ggml_backend_tensor_get(src1Ptr, copy, 0, bytes);
      data = copy.buffer.slice(copy.byteOffset, copy.byteOffset + bytes);
    }
    const view = new DataView(data);
    for (let i3 = 0; i3 < ne[3]!; i3++) {
      for (let i2 = 0; i2 < ne[2]!; i2++) {
        const mat = (i3 % ne0[3]!) * ne0[2]! + (i2 % ne0[2]!);
        for (let row = 0; row < ne[1]!; row++) {
          const base = row * nb[1]! + i2 * nb[2]! + i3 * nb[3]!;
          for (let j = 0; j < columns; j++) {
            const x = view.getFloat32(base + j * 4, true);
            sums[mat * columns + j]! += x * x;
          }
        }
      }
    }
    this.counts.set(name, (this.counts.get(name) ?? 0) + (ne[1]! * ne[2]! * ne[3]!) / nMat);
  }

  /** The collected statistics in the file's shape (one count per matrix, all equal for dense weights). */
  entries(): Map<string, ImatrixEntry> {
    const out = new Map<string, ImatrixEntry>();
    for (const [name, sums] of this.sums) {
      out.set(name, {
        sums: Float32Array.from(sums),
        counts: new Float32Array(this.matrices.get(name) ?? 1).fill(this.counts.get(name) ?? 0),
      });
    }
    return out;
  }
}

function cString(name: number[] | string): string {
  if (typeof name === "string") return name;
  const end = name.indexOf(0);
  return Buffer.from(end < 0 ? name : name.slice(0, end)).toString("utf8");
}

/** Computes the importance matrix of a model over a text. `onChunk` after each chunk. */
export async function computeImatrix(
  bindings: Bindings,
  paths: { llama: string; ggmlBase: string },
  o: ComputeImatrixOptions,
  onChunk: (done: number, total: number) => void = () => {},
): Promise<Imatrix> {
  const collector = new Collector(quantizeApi(bindings, paths));
  const callback = koffi.register(
    (tensor: Ptr, ask: boolean, _ud: Ptr | null) => collector.callback(tensor, ask),
    koffi.pointer(GgmlEvalCallback),
  );
  let evaluator: ChunkEvaluator | undefined;
  try {
    evaluator = ChunkEvaluator.load(bindings, {
      modelPath: o.modelPath,
      contextSize: o.contextSize,
      threads: o.threads,
      evalCallback: callback as unknown as Ptr,
    });
    const tokens = evaluator.tokenize(o.text);
    const chunks = chunkCount(tokens.length, o.contextSize, o.maxChunks);
    if (chunks < 1) {
      throw new LlmosError(
        "invalid_request",
        `the text is ${tokens.length} tokens; a context of ${o.contextSize} needs at least ${o.contextSize}`,
      );
    }
    for (let c = 0; c < chunks; c++) {
      // Logits of every position, as llama-imatrix asks: otherwise llama.cpp drops the unused rows before the last
      // layer's feed-forward, and its matrices would see one row (fewer than 16: not collected).
      evaluator.chunkLogits(tokens.slice(c * o.contextSize, (c + 1) * o.contextSize), 0);
      onChunk(c + 1, chunks);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (collector.sums.size === 0)
      throw new LlmosError("invalid_request", "no matrix product was seen: nothing to collect");
    return { entries: collector.entries(), datasets: [o.datasetName], chunkCount: chunks, chunkSize: o.contextSize };
  } finally {
    evaluator?.dispose();
    koffi.unregister(callback);
  }
}
