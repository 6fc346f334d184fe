/**
 * Quantizes a GGUF file with libllama's `llama_model_quantize`, the same code `llama-quantize` runs, so the output
 * is that tool's output byte for byte (no imatrix metadata is added: llama-quantize adds it only with --imatrix).
 * The call runs on a koffi worker thread; the main thread stays free for the log callback (progress) and IPC.
 */
import koffi from "koffi";
import type { NativeRuntime } from "./native-runtime.js";
import { LlamaModelImatrixData, LlamaModelQuantizeParams, quantizeApi } from "./quantize-bindings.js";
import { classifyQuantizeFailure, parseQuantizeLogLine, type QuantizeFailureKind } from "./quantize-log.js";

/** What to quantize, and how. */
export interface QuantizeFileOptions {
  input: string;
  output: string;
  /** llama.cpp file type (`enum llama_ftype`), e.g. 15 for Q4_K_M. */
  fileType: number;
  threads: number;
  /** Every quantizable tensor to the type's base type (no k-quant mixes). Default false. */
  pure?: boolean;
  /** Allow quantizing tensors that are already quantized. Default false. */
  allowRequantize?: boolean;
  /** Compute the output size only; nothing is written. Default false. */
  dryRun?: boolean;
  /** Importance values by tensor name (llama.cpp's normalised `in_sum2 / counts`). */
  imatrix?: ReadonlyMap<string, Float32Array>;
}

/** What a quantization did. */
export interface QuantizeOutcome {
  tensors: number;
  /** Tensors whose row size did not fit the target type's block, written in another type. */
  fallbackTensors: number;
  /** Tensor bytes of the output as llama.cpp computed them (MiB, 2 decimals, in its log). */
  quantBytes: number;
  modelBytes: number;
}

/** A quantization llama.cpp refused or failed, with the reason it logged. */
export class QuantizeError extends Error {
  override readonly name = "QuantizeError";
  constructor(
    readonly kind: QuantizeFailureKind,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Runs one quantization. `onTensor` is called as llama.cpp starts each tensor (1-based index).
 * The runtime's log callback is taken over for the call (this runs in a worker process of its own).
 */
export async function quantizeFile(
  runtime: NativeRuntime,
  options: QuantizeFileOptions,
  onTensor: (index: number, total: number, name: string) => void = () => {},
): Promise<QuantizeOutcome> {
  const api = quantizeApi(runtime.bindings, runtime.files);
  const params = api.llama_model_quantize_default_params();
  params.nthread = options.threads;
  params.ftype = options.fileType;
  params.pure = options.pure ?? false;
  params.allow_requantize = options.allowRequantize ?? false;
  params.dry_run = options.dryRun ?? false;
  const keep: unknown[] = []; // native memory the params point at, alive until the call returns
  if (options.imatrix && options.imatrix.size > 0) params.imatrix = imatrixArray(options.imatrix, keep);
  const paramsBuf = Buffer.alloc(LlamaModelQuantizeParams.size);
  koffi.encode(paramsBuf, LlamaModelQuantizeParams, params);

  const outcome: QuantizeOutcome = { tensors: 0, fallbackTensors: 0, quantBytes: 0, modelBytes: 0 };
  let failure: string | undefined;
  const previous = runtime.logger;
  runtime.setLogger((level, line) => {
    const event = parseQuantizeLogLine(line);
    if (!event) return;
    switch (event.kind) {
      case "tensor":
        outcome.tensors = event.total;
        onTensor(event.index, event.total, event.name);
        return;
      case "fallback-count":
        outcome.fallbackTensors = event.count;
        return;
      case "size":
        outcome[event.which === "quant" ? "quantBytes" : "modelBytes"] = Math.round(event.mib * 1024 * 1024);
        return;
      case "failure":
        failure = event.reason;
        return;
      case "fallback":
        return;
    }
    void level;
  });
  try {
    const rc = await new Promise<number>((resolve, reject) =>
      api.llama_model_quantize.async(options.input, options.output, paramsBuf, (err, res) =>
        err ? reject(err) : resolve(res),
      ),
    );
    if (rc !== 0) {
      const reason = failure ?? `llama_model_quantize returned ${rc}`;
      throw new QuantizeError(classifyQuantizeFailure(reason), reason);
    }
    keep.length = 0;
    return outcome;
  } finally {
    runtime.setLogger(previous);
  }
}

/** The NULL-terminated `llama_model_imatrix_data` array; the buffers it points at are pushed to `keep`. */
function imatrixArray(imatrix: ReadonlyMap<string, Float32Array>, keep: unknown[]): bigint {
  const size = LlamaModelImatrixData.size;
  const at = (member: string) => LlamaModelImatrixData.members![member]!.offset;
  const array = Buffer.alloc(size * (imatrix.size + 1)); // zeroed: the last entry is the terminator
  let i = 0;
  for (const [name, values] of imatrix) {
    const cName = Buffer.from(`${name}\0`, "utf8");
    const data = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
    keep.push(cName, data, values);
    array.writeBigUInt64LE(koffi.address(cName), i * size + at("name"));
    array.writeBigUInt64LE(koffi.address(data), i * size + at("data"));
    array.writeBigUInt64LE(BigInt(values.length), i * size + at("size"));
    i++;
  }
  keep.push(array);
  return koffi.address(array);
}
