/**
 * `llmos quantize`: a new model whose weights are an existing model's, quantized by llama.cpp in a worker process.
 * Every refusal is decided before the worker writes a byte (type, requantizing, importance matrix, disk space), the
 * output is written to the store's tmp/, validated with the GGUF reader, and registered like a created model (the
 * source's definition is inherited; the manifest records the source digest, the type and the fallback tensors).
 */
import fs from "node:fs/promises";
import path from "node:path";
import {
  GGML_TYPES,
  imatrixShapes,
  quantizeTarget,
  quantizeTargetNames,
  isGgufError,
  readGguf,
  type QuantizeTarget,
} from "@llmos/gguf";
import { LlmosError } from "../errors.js";
import type { QuantizeResult } from "../runner/tool-ipc-protocol.js";
import type { ToolWorkers } from "../runtime/tool-worker.js";
import {
  adoptDerivedFile,
  derivedFilePath,
  ensureFreeSpace,
  hashFile,
  isDigest,
  normalizeDigest,
  parseModelName,
  type CreateProgress,
  type ModelRecord,
  type ModelStore,
  type QuantizationRecord,
  type TempBlob,
} from "../store/index.js";
import { imatrixMismatch } from "./imatrix-match.js";
import { largestTensorElements, type JobMemory } from "./job-memory.js";

/** What to quantize (the wire request, less the stream flag). */
export interface QuantizeSpec {
  /** Source model, or (Ollama create) anything `createFromSpec` takes as FROM. */
  model: string;
  name: string;
  type: string;
  imatrix?: string;
  pure?: boolean;
  allowRequantize?: boolean;
}

/** A progress event: Ollama's shape, with tensors as the unit and the bytes written so far. */
export interface QuantizeProgress extends CreateProgress {
  total?: number;
  completed?: number;
  /** Bytes of the output written so far. */
  bytes?: number;
}

/** The type named `name`, or a 400 that lists the valid ones. */
export function resolveQuantizeType(name: string): QuantizeTarget {
  const target = quantizeTarget(name);
  if (!target) {
    throw new LlmosError(
      "invalid_request",
      `unknown quantization type "${name}"; valid types: ${quantizeTargetNames().join(", ")}`,
      { validTypes: quantizeTargetNames() },
    );
  }
  return target;
}

/** What a quantized file may take beyond the dry run's estimate before its worker is stopped as misbehaving. */
const OUTPUT_SLACK_BYTES = 16 * 1024 * 1024;

export class ModelQuantizer {
  constructor(
    private readonly store: ModelStore,
    private readonly workers: ToolWorkers,
    private readonly threads: number,
    private readonly memory: JobMemory,
  ) {}

  /** Quantizes `spec.model` into the new model `spec.name`. Aborting `signal` kills the worker and cleans up. */
  async quantize(
    spec: QuantizeSpec,
    onProgress: (e: QuantizeProgress) => void = () => {},
    signal?: AbortSignal,
  ): Promise<ModelRecord> {
    const target = resolveQuantizeType(spec.type);
    parseModelName(spec.name);
    return this.store.createFromSpec(
      spec.name,
      { from: spec.model },
      {
        onProgress,
        ...(signal ? { signal } : {}),
        transformModel: (source) => this.quantizeWeights(source, target, spec, onProgress, signal),
      },
    );
  }

  /** The `transformModel` step of a create: checks, runs the worker, adopts its output. */
  async quantizeWeights(
    source: { digest: string; path: string },
    target: QuantizeTarget,
    spec: Omit<QuantizeSpec, "model" | "type" | "name">,
    onProgress: (e: QuantizeProgress) => void,
    signal?: AbortSignal,
  ): Promise<{ model: TempBlob; quantization: QuantizationRecord }> {
    const header = await readGguf(source.path, this.store.ggufLimits).catch((error: unknown) => {
      // The store validated this blob when it came in: it changed on disk since.
      throw isGgufError(error)
        ? new LlmosError("invalid_model_file", `the stored model is not a valid GGUF file: ${error.message}`, {
            ggufCode: error.code,
          })
        : error;
    });
    const quantized = header.tensors.find((t) => GGML_TYPES.get(t.type)?.quantized);
    if (quantized && !spec.allowRequantize) {
      throw new LlmosError(
        "requantize_not_allowed",
        `the model is already quantized (${quantized.name} is ${quantized.typeName}); quantizing it again loses more ` +
          "quality than quantizing its F16/F32 original: give allowRequantize (--allow-requantize) to do it anyway",
        { tensor: quantized.name, tensorType: quantized.typeName },
      );
    }
    const imatrix = spec.imatrix ? await this.resolveImatrix(spec.imatrix, header.tensors) : undefined;
    if (target.requiresImatrix && !imatrix) {
      throw new LlmosError(
        "imatrix_required",
        `${target.name} needs an importance matrix (--imatrix): without one llama.cpp's result is garbage; ` +
          "make one with `llmos imatrix <model> --text <file>`",
        { type: target.name },
      );
    }
    const output = derivedFilePath(this.store, "quantize");
    onProgress({ status: `waiting for memory to quantize`, total: header.tensors.length, completed: 0, bytes: 0 });
    const reservation = await this.memory.reserveJobMemory(
      {
        job: "quantize",
        model: source.digest,
        workload: { kind: "quantize", largestTensorElements: largestTensorElements(header.tensors) },
      },
      signal,
    );
    onProgress({ status: `quantizing ${target.name}`, total: header.tensors.length, completed: 0, bytes: 0 });
    try {
      const result = await this.workers.run<QuantizeResult>(
        {
          kind: "quantize",
          input: source.path,
          output,
          fileType: target.fileType,
          threads: this.threads,
          pure: spec.pure ?? false,
          allowRequantize: spec.allowRequantize ?? false,
          ...(imatrix ? { imatrixPath: imatrix.path } : {}),
        },
        {
          memoryBytes: reservation.bytes,
          // The tensors' bytes from llama.cpp's dry run, plus the source's header and each tensor's padding: checked
          // against the disk, and the most the worker may write.
          onEstimate: async (bytes, tensors) => {
            const expected = bytes + header.dataOffset + tensors * header.alignment;
            await ensureFreeSpace(
              this.store.dirs.tmp,
              expected,
              this.store.reserveBytes,
              `the ${target.name} model (estimated)`,
            );
            return expected + OUTPUT_SLACK_BYTES;
          },
          onProgress: (p) =>
            onProgress({
              status: `quantizing ${target.name}`,
              total: p.total,
              completed: p.done,
              ...(p.bytes !== undefined ? { bytes: p.bytes } : {}),
            }),
        },
        signal,
      );
      const model = await adoptDerivedFile(this.store, output, `the ${target.name} model llama.cpp wrote`);
      return {
        model,
        quantization: {
          sourceDigest: source.digest,
          type: target.name,
          tensors: result.tensors,
          fallbackTensors: result.fallbackTensors,
          ...(imatrix ? { imatrixDigest: imatrix.digest } : {}),
          ...(spec.pure ? { pure: true } : {}),
        },
      };
    } catch (error) {
      await fs.rm(output, { force: true });
      throw error;
    } finally {
      reservation.release(); // the worker has exited (ToolWorkers settles after its exit)
    }
  }

  /** An imatrix blob (by digest) or file (absolute path), checked against the model's tensors. */
  private async resolveImatrix(
    ref: string,
    tensors: Array<{ name: string; dims: number[] }>,
  ): Promise<{ path: string; digest: string }> {
    let file: string;
    if (isDigest(ref)) {
      file = this.store.blobPath(normalizeDigest(ref));
    } else if (path.isAbsolute(ref)) {
      file = ref;
    } else {
      throw new LlmosError("invalid_request", "imatrix: give sha256:<hex> of an uploaded blob or an absolute path");
    }
    let header;
    try {
      header = await readGguf(file, this.store.ggufLimits);
    } catch (error) {
      const missing = (error as { cause?: NodeJS.ErrnoException }).cause?.code === "ENOENT";
      throw new LlmosError(
        missing ? "not_found" : "imatrix_mismatch",
        missing ? `imatrix ${ref}: not found` : `imatrix ${ref} is not a GGUF file: ${(error as Error).message}`,
      );
    }
    const problem = imatrixMismatch(imatrixShapes(header), tensors);
    if (problem) throw new LlmosError("imatrix_mismatch", `imatrix ${ref} does not match the model: ${problem}`);
    return { path: file, digest: isDigest(ref) ? normalizeDigest(ref) : (await hashFile(file)).digest };
  }
}
