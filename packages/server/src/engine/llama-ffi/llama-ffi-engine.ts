/**
 * The `llama-ffi` engine: drives the prebuilt libllama shipped by node-llama-cpp directly through koffi, with a
 * persistent ggml threadpool per context and continuous batching across sequences.
 */
import type { Engine, EngineLoadOptions, EngineModel } from "../engine.js";
import type { DecodeMode } from "./batch-scheduler.js";
import type { CpuBackendInfo } from "./cpu-backend.js";
import { LlamaFfiModel } from "./llama-ffi-model.js";
import { getNativeRuntime, type EngineLogger, type NativeRuntime } from "./native-runtime.js";

/** Options of `LlamaFfiEngine.create`. */
export interface LlamaFfiEngineOptions {
  /** Folder holding libllama, libggml and the ggml backend variants. Default: the one node-llama-cpp ships. */
  libraryDir?: string;
  /**
   * Receives llama.cpp logs. Default: logs are discarded (by a native no-op, see native-runtime.ts).
   * llama.cpp's log callback is process-wide: the most recently created engine decides where logs go.
   */
  logger?: EngineLogger;
  /**
   * Folder of a CPU backend built on this machine (`llmos build-cpu-backend`). Used when it matches the loaded
   * libraries; otherwise the shipped CPU variant is, and `cpuBackend.fallbackReason` says why. Default: none.
   */
  cpuBackendDir?: string | null;
  /** Prefer GPU builds (CUDA, then Vulkan) when installed, and offload all layers for `gpuLayers: "auto"`. Default false. */
  gpu?: boolean;
  /** How llama_decode is called. Default "sync" (one decode per event-loop turn; measured no slower than "async"). */
  decodeMode?: DecodeMode;
  /** Max prompt tokens decoded per step while other sequences are generating. Default 128. */
  promptChunk?: number;
  /**
   * ggml threadpool polling level, 0 (idle workers sleep) to 100 (busy-wait). Default 50 (ggml's default).
   */
  threadpoolPoll?: number;
  /** Tokens of a long embedding input decoded per step (cancellation is checked between steps). Default 256. */
  embedChunk?: number;
  /**
   * What copying a cached prefix from one slot to another costs, counted in prompt tokens evaluated, when every
   * sequence has its own KV stream (the copy moves a whole stream). Default 32; Infinity: never copy.
   */
  prefixCopyCostTokens?: number;
}

export class LlamaFfiEngine implements Engine {
  readonly name = "llama-ffi";
  private readonly models = new Set<LlamaFfiModel>();
  private disposed = false;
  private warnedNoPause = false;

  private constructor(
    private readonly runtime: NativeRuntime,
    private readonly opts: LlamaFfiEngineOptions,
  ) {}

  /** Load the native libraries (once per process) and the JSON-schema grammar converter. */
  static async create(opts: LlamaFfiEngineOptions = {}): Promise<LlamaFfiEngine> {
    const runtime = getNativeRuntime({
      ...(opts.libraryDir ? { libraryDir: opts.libraryDir } : {}),
      gpu: opts.gpu ?? false,
      logger: opts.logger ?? null,
      cpuBackendDir: opts.cpuBackendDir ?? null,
    });
    return new LlamaFfiEngine(runtime, opts);
  }

  /** Which CPU backend computes: one built here, or the variant node-llama-cpp ships. */
  get cpuBackend(): CpuBackendInfo {
    return this.runtime.cpuBackend;
  }

  /** Names of the ggml backend devices that were registered (e.g. ["CPU"]). */
  get devices(): readonly string[] {
    return this.runtime.devices;
  }

  async load(options: EngineLoadOptions): Promise<EngineModel> {
    if (this.disposed) throw new Error("engine is disposed");
    // Loading is synchronous native work; yield first so the caller's pending I/O is flushed.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const model = LlamaFfiModel.load(
      this.runtime.bindings,
      options,
      {
        decodeMode: this.opts.decodeMode ?? "sync",
        promptChunk: this.opts.promptChunk ?? 128,
        gpu: this.opts.gpu ?? false,
        threadpoolPoll: this.opts.threadpoolPoll,
        ...(this.opts.embedChunk ? { embedChunk: this.opts.embedChunk } : {}),
        ...(this.opts.prefixCopyCostTokens !== undefined
          ? { prefixCopyCostTokens: this.opts.prefixCopyCostTokens }
          : {}),
      },
      () => this.models.delete(model),
    );
    this.models.add(model);
    if (!this.warnedNoPause && !this.runtime.bindings.threadpoolPause()) {
      this.warnedNoPause = true;
      this.opts.logger?.(
        "warn",
        "ggml_threadpool_pause was not found in the CPU backend library: idle decode threads will busy-poll after each request",
      );
    }
    return model;
  }

  /** Dispose every loaded model. The shared libraries stay loaded (they cannot be unloaded safely). Idempotent. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await Promise.all([...this.models].map((m) => m.dispose()));
    if (this.opts.logger && this.runtime.logger === this.opts.logger) this.runtime.setLogger(null);
  }
}
