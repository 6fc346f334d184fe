/**
 * One loaded model: llama_model + a generation context (n_seq_max = slots) driven by a BatchScheduler, an optional
 * embedding context, LoRA adapters and the persistent threadpool shared by both contexts (one pool per thread count
 * the daemon allots, see ThreadpoolSet).
 */
import koffi from "koffi";
import { LlmosError } from "../../errors.js";
import {
  CancelledError,
  checkPromptTokens,
  ContextOverflowError,
  EngineBusyError,
  type EmbedOptions,
  type Embedding,
  type CpuAllotment,
  type EngineLoadOptions,
  type EngineModel,
  type EngineStats,
  type GenerateParams,
  type Generation,
  type ModelFacts,
} from "../engine.js";
import {
  LLAMA_FLASH_ATTN_TYPE_AUTO,
  LLAMA_POOLING_TYPE_MEAN,
  LlamaProgressCallback,
  type Bindings,
  type Ptr,
} from "./bindings.js";
import { BatchScheduler, type DecodeMode } from "./batch-scheduler.js";
import { SlotTable } from "../prompt-cache/slot-table.js";
import { kvSequenceOps } from "./kv-sequences.js";
import { FfiGeneration } from "./ffi-generation.js";
import { gbnfFor } from "./grammar.js";
import { buildSamplerChain } from "./sampler-chain.js";
import { createThreadpool } from "./threadpool.js";
import { ThreadpoolSet } from "./threadpool-set.js";
import { VocabText } from "./vocab-text.js";
import { KV_CACHE_GGML_TYPES } from "./kv-cache-types.js";

/** Engine-level tuning that is not part of EngineLoadOptions. */
export interface FfiModelTuning {
  decodeMode: DecodeMode;
  promptChunk: number;
  gpu: boolean;
  /** ggml threadpool polling level 0-100; undefined = ggml's default. */
  threadpoolPoll: number | undefined;
  /** Tokens of a long embedding input decoded per step (causal models); default {@link EMBED_CHUNK}. */
  embedChunk?: number;
  /**
   * What copying a cached prefix between slots costs, in prompt tokens, when each sequence has its own KV stream
   * (llama.cpp then copies the whole stream). Default 32; Infinity never copies.
   */
  prefixCopyCostTokens?: number;
}

/** Native resources, freed in reverse order. */
interface Native {
  model: Ptr;
  ctx: Ptr;
  threadpools: ThreadpoolSet;
  adapters: Ptr[];
  embedCtx: Ptr | null;
}

export class LlamaFfiModel implements EngineModel {
  readonly facts: ModelFacts;
  private readonly vocab: Ptr;
  private readonly vocabText: VocabText;
  private readonly scheduler: BatchScheduler;
  private readonly perSequenceLimit: number;
  /** Token states of a causal model do not depend on later tokens: long embedding inputs may be decoded in chunks. */
  private readonly causal: boolean;
  /** Embeddings share one context and its KV cache: one at a time, chunk after chunk. */
  private embedding: Promise<unknown> = Promise.resolve();
  private readonly embedChunkTokens: number;
  private disposed = false;
  private disposing: Promise<void> | undefined;

  private constructor(
    private readonly bindings: Bindings,
    private readonly native: Native,
    private readonly options: EngineLoadOptions,
    tuning: FfiModelTuning,
    private readonly onDispose: () => void,
  ) {
    const { llama } = bindings;
    this.vocab = llama.llama_model_get_vocab(native.model);
    const nVocab = llama.llama_vocab_n_tokens(this.vocab);
    this.vocabText = new VocabText(llama, this.vocab, nVocab);
    const bos = llama.llama_vocab_bos(this.vocab);
    const eos = llama.llama_vocab_eos(this.vocab);
    this.facts = {
      trainContextSize: llama.llama_model_n_ctx_train(native.model),
      vocabSize: nVocab,
      embeddingSize: llama.llama_model_n_embd(native.model),
      bosToken: bos < 0 ? null : bos,
      eosToken: eos < 0 ? null : eos,
      bosText: this.vocabText.specialText(bos < 0 ? null : bos),
      eosText: this.vocabText.specialText(eos < 0 ? null : eos),
    };
    this.perSequenceLimit = Math.min(
      Math.floor(options.contextSize / options.slots),
      llama.llama_n_ctx_seq(native.ctx),
    );
    const arch = metaString(bindings, native.model, "general.architecture");
    this.causal = arch === undefined || metaString(bindings, native.model, `${arch}.attention.causal`) !== "false";
    this.embedChunkTokens = Math.max(1, tuning.embedChunk ?? EMBED_CHUNK);
    const mem = llama.llama_get_memory(native.ctx);
    const streamPerSequence = !kvUnified(options);
    this.scheduler = new BatchScheduler({
      llama,
      ctx: native.ctx,
      slots: new SlotTable(kvSequenceOps(llama, mem, streamPerSequence), {
        slots: options.slots,
        // A copy between streams moves the whole stream's buffers; in a unified cache it only marks cells shared.
        copyCostTokens: streamPerSequence ? (tuning.prefixCopyCostTokens ?? 32) : 1,
        minMatchFraction: 0.1,
      }),
      vocab: this.vocab,
      vocabText: this.vocabText,
      batchCapacity: llama.llama_n_batch(native.ctx),
      perSequenceLimit: this.perSequenceLimit,
      promptChunk: tuning.promptChunk,
      decodeMode: tuning.decodeMode,
      // Idle ggml workers busy-poll for a while after each decode; with several models (runners) loaded, that
      // takes CPU from the one that is working.
      onIdle: () => native.threadpools.current.pause(),
      ...(options.onProgress ? { onStep: options.onProgress } : {}),
    });
  }

  /** Load the model, its context(s), threadpool and adapters. Frees everything it made if a step fails. */
  static load(
    bindings: Bindings,
    options: EngineLoadOptions,
    tuning: FfiModelTuning,
    onDispose: () => void,
  ): LlamaFfiModel {
    validate(options);
    const { llama } = bindings;
    const made: Partial<Native> & { adapters: Ptr[] } = { adapters: [] };
    try {
      const mp = llama.llama_model_default_params();
      mp.n_gpu_layers = options.gpuLayers === "auto" ? (tuning.gpu ? -1 : 0) : options.gpuLayers;
      const progress = loadProgressCallback(options.onProgress);
      if (progress) mp.progress_callback = progress.ptr;
      let model: Ptr | null;
      try {
        model = llama.llama_model_load_from_file(options.modelPath, mp);
      } finally {
        progress?.release();
      }
      if (!model) throw new LlmosError("model_load_failed", `llama.cpp could not load ${options.modelPath}`);
      made.model = model;
      made.threadpools = new ThreadpoolSet(
        bindings,
        createThreadpool(bindings, options.threads, tuning.threadpoolPoll),
        tuning.threadpoolPoll,
      );
      made.ctx = createContext(bindings, model, made.threadpools.current, options, false);
      for (const lora of options.loraAdapters ?? []) {
        const adapter = llama.llama_adapter_lora_init(model, lora.path);
        if (!adapter) throw new LlmosError("model_load_failed", `llama.cpp could not load LoRA adapter ${lora.path}`);
        made.adapters.push(adapter);
      }
      if (made.adapters.length > 0) {
        const ptrs = BigUint64Array.from(made.adapters);
        const scales = Float32Array.from((options.loraAdapters ?? []).map((l) => l.scale));
        const rc = llama.llama_set_adapters_lora(made.ctx, ptrs, made.adapters.length, scales);
        if (rc !== 0) throw new LlmosError("model_load_failed", `llama_set_adapters_lora failed (${rc})`);
      }
      made.embedCtx = options.embeddings
        ? createContext(bindings, model, made.threadpools.current, options, true)
        : null;
      return new LlamaFfiModel(bindings, made as Native, options, tuning, onDispose);
    } catch (err) {
      freeNative(bindings, made);
      throw err;
    }
  }

  generate(params: GenerateParams): Generation {
    this.assertLive();
    const prompt = this.promptTokens(params);
    if (prompt.length === 0) throw new LlmosError("invalid_request", "prompt is empty");
    // At least one token must fit after the prompt.
    if (prompt.length + 1 > this.perSequenceLimit) throw new ContextOverflowError(prompt.length, this.perSequenceLimit);
    if (this.scheduler.freeSlots <= 0) throw new EngineBusyError(`all ${this.options.slots} sequences are busy`);
    const grammar = params.grammar ? gbnfFor(params.grammar) : undefined;
    const sampler = buildSamplerChain(this.bindings.llama, this.vocab, this.facts.vocabSize, params.sampling, grammar);
    const startedAt = performance.now();
    const generation = new FfiGeneration(() => this.scheduler.wake());
    if (params.maxTokens <= 0) {
      this.bindings.llama.llama_sampler_free(sampler);
      generation.finish({
        finishReason: "length",
        promptTokens: prompt.length,
        cachedPromptTokens: 0,
        completionTokens: 0,
        promptMs: 0,
        generateMs: 0,
      });
      return generation;
    }
    this.scheduler.start({
      generation,
      prompt: Int32Array.from(prompt),
      sampler,
      maxTokens: params.maxTokens,
      stop: params.stop,
      stopAtEog: params.stopAtEog ?? true,
      logprobs: params.logprobs === undefined ? undefined : Math.max(0, Math.floor(params.logprobs)),
      startedAt,
      cachePrompt: params.cachePrompt ?? true,
    });
    return generation;
  }

  /**
   * Mean-pooled embedding. A causal model's long input is decoded in chunks of {@link EMBED_CHUNK} tokens (the KV
   * cache carries the earlier ones) and the chunks' means are combined by their token counts: the same mean, with
   * the decode loop free for other sequences between chunks, and `isCancelled` checked before each chunk.
   */
  async embed(text: string, options: EmbedOptions = {}): Promise<Embedding> {
    this.assertLive();
    let tokens = this.vocabText.tokenize(text, true, false);
    if (tokens.length === 0) throw new LlmosError("invalid_request", "text to embed is empty");
    if (tokens.length > this.perSequenceLimit) {
      if (!options.truncate) throw new ContextOverflowError(tokens.length, this.perSequenceLimit);
      tokens = tokens.slice(0, this.perSequenceLimit);
    }
    const run = this.embedding.then(async () => {
      const chunk = this.causal ? this.embedChunkTokens : tokens.length;
      const sum = new Float64Array(this.facts.embeddingSize);
      for (let start = 0; start < tokens.length; start += chunk) {
        if (options.isCancelled?.()) throw new CancelledError("embedding cancelled");
        const part = tokens.slice(start, start + chunk);
        // Decodes run inside the scheduler loop: both contexts share one threadpool and one thread of control.
        const mean = await this.scheduler.runExclusive(() => this.embedChunk(part, start));
        for (let i = 0; i < sum.length; i++) sum[i]! += mean[i]! * part.length;
      }
      return { vector: Array.from(sum, (x) => x / tokens.length), tokens: tokens.length };
    });
    this.embedding = run.catch(() => undefined);
    return run;
  }

  /** Decodes tokens at positions `start`... of the embedding sequence (cleared at 0); returns their mean state. */
  private embedChunk(tokens: number[], start: number): Float32Array {
    this.assertLive();
    const { llama } = this.bindings;
    this.native.embedCtx ??= createContext(
      this.bindings,
      this.native.model,
      this.native.threadpools.current,
      this.options,
      true,
    );
    const ctx = this.native.embedCtx;
    if (start === 0) llama.llama_memory_clear(llama.llama_get_memory(ctx), true);
    const batch = llama.llama_batch_init(tokens.length, 0, 1);
    try {
      const n = tokens.length;
      const tok = new Int32Array(koffi.view(batch.token!, n * 4));
      const pos = new Int32Array(koffi.view(batch.pos!, n * 4));
      const nSeq = new Int32Array(koffi.view(batch.n_seq_id!, n * 4));
      const seqPtrs = new BigUint64Array(koffi.view(batch.seq_id!, n * 8));
      const logits = new Int8Array(koffi.view(batch.logits!, n));
      for (let i = 0; i < n; i++) {
        tok[i] = tokens[i]!;
        pos[i] = start + i;
        nSeq[i] = 1;
        new Int32Array(koffi.view(seqPtrs[i]!, 4))[0] = 0;
        logits[i] = 1;
      }
      batch.n_tokens = n;
      const rc = llama.llama_decode(ctx, batch);
      if (rc !== 0) throw new Error(`llama_decode (embeddings) failed (${rc})`);
      this.options.onProgress?.();
      const ptr = llama.llama_get_embeddings_seq(ctx, 0);
      if (!ptr) throw new Error("llama_get_embeddings_seq returned NULL");
      return new Float32Array(koffi.view(ptr, this.facts.embeddingSize * 4)).slice();
    } finally {
      llama.llama_batch_free(batch);
    }
  }

  tokenize(text: string, opts?: { addBos?: boolean; parseSpecial?: boolean }): number[] {
    this.assertLive();
    const tokens = this.vocabText.tokenize(text, false, opts?.parseSpecial ?? false);
    const bos = this.facts.bosToken;
    if (opts?.addBos && bos !== null && tokens[0] !== bos) tokens.unshift(bos);
    return tokens;
  }

  detokenize(tokens: number[]): string {
    this.assertLive();
    return this.vocabText.detokenize(tokens);
  }

  stats(): EngineStats {
    return this.scheduler.stats();
  }

  setCpuAllotment({ threads, shared }: CpuAllotment): Promise<void> {
    this.assertLive();
    if (!Number.isInteger(threads) || threads < 0)
      return Promise.reject(new RangeError(`threads must be a non-negative integer, got ${threads}`));
    // Between decode steps: the contexts must not be computing while their pool changes.
    return this.scheduler.runExclusive(() => {
      if (this.disposed) return;
      const { ctx, embedCtx } = this.native;
      if (threads > 0) this.native.threadpools.switchTo(threads, embedCtx ? [ctx, embedCtx] : [ctx]);
      this.scheduler.setCpuState({ held: threads === 0, contended: shared });
    });
  }

  /** Decode threads of the attached threadpool. */
  get threads(): number {
    return this.native.threadpools.threads;
  }

  /** Slots a new generation could take now (free slots not promised to a job waiting to be placed). */
  get freeSlots(): number {
    return this.scheduler.freeSlots;
  }

  dispose(): Promise<void> {
    this.disposing ??= (async () => {
      this.disposed = true;
      await this.scheduler.dispose();
      freeNative(this.bindings, this.native);
      this.onDispose();
    })();
    return this.disposing;
  }

  private assertLive(): void {
    if (this.disposed) throw new Error("model is disposed");
  }

  private promptTokens(params: GenerateParams): number[] {
    const bos = this.facts.bosToken;
    if (Array.isArray(params.prompt)) {
      checkPromptTokens(params.prompt, this.facts.vocabSize);
      const tokens = [...params.prompt];
      if (params.addBos === true && bos !== null && tokens[0] !== bos) tokens.unshift(bos);
      return tokens;
    }
    const wantBos = (params.addBos ?? true) && this.bindings.llama.llama_vocab_get_add_bos(this.vocab);
    const tokens = this.vocabText.tokenize(params.prompt, false, true);
    if (wantBos && bos !== null && tokens[0] !== bos) tokens.unshift(bos);
    return tokens;
  }
}

/** Tokens of a long embedding input decoded per step (a causal model's input is split; see `embed`). */
export const EMBED_CHUNK = 256;

/** A metadata string of a loaded model, or undefined when the key is absent. */
function metaString(bindings: Bindings, model: Ptr, key: string): string | undefined {
  const buf = Buffer.alloc(256);
  const n = bindings.llama.llama_model_meta_val_str(model, key, buf, buf.length);
  return n < 0 ? undefined : buf.toString("utf8", 0, Math.min(n, buf.length - 1));
}

/**
 * A native llama.cpp load-progress callback that reports each load step (llama.cpp calls it on this thread while
 * it reads tensors), or undefined without a listener. `release` unregisters it after the load.
 */
function loadProgressCallback(onProgress: (() => void) | undefined): { ptr: Ptr; release: () => void } | undefined {
  if (!onProgress) return undefined;
  const cb = koffi.register(() => {
    onProgress();
    return true;
  }, koffi.pointer(LlamaProgressCallback));
  return { ptr: cb as unknown as Ptr, release: () => koffi.unregister(cb) };
}

function validate(o: EngineLoadOptions): void {
  const positive = (name: string, v: number): void => {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  };
  positive("contextSize", o.contextSize);
  positive("slots", o.slots);
  positive("threads", o.threads);
  if (o.batchSize !== undefined) positive("batchSize", o.batchSize);
  if (o.contextSize < o.slots) throw new RangeError(`contextSize ${o.contextSize} is smaller than slots ${o.slots}`);
}

/**
 * Create a context bound to the shared threadpool.
 * Generation: n_seq_max = slots. The KV cache is split per sequence (kv_unified=false, faster attention when
 * sequences share no prefix) when contextSize/slots is already a multiple of 256 (llama.cpp pads per-sequence
 * sizes to 256); otherwise one unified cache of exactly contextSize cells, so memory matches the request.
 * Embeddings: one sequence, mean pooling, the whole input in one micro-batch.
 */
function createContext(
  bindings: Bindings,
  model: Ptr,
  tp: { ptr: Ptr; threads: number },
  o: EngineLoadOptions,
  embeddings: boolean,
): Ptr {
  const { llama } = bindings;
  const cp = llama.llama_context_default_params();
  const perSeq = Math.floor(o.contextSize / o.slots);
  cp.n_threads = tp.threads;
  cp.n_threads_batch = tp.threads;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_AUTO;
  cp.no_perf = true;
  cp["type_k"] = KV_CACHE_GGML_TYPES[o.kvCacheType?.k ?? "f16"];
  cp["type_v"] = KV_CACHE_GGML_TYPES[o.kvCacheType?.v ?? "f16"];
  if (embeddings) {
    cp.n_ctx = perSeq;
    cp.n_batch = perSeq;
    cp.n_ubatch = perSeq;
    cp.n_seq_max = 1;
    cp.embeddings = true;
    cp.pooling_type = LLAMA_POOLING_TYPE_MEAN;
  } else {
    const batch = o.batchSize ?? 512;
    cp.n_ctx = o.contextSize;
    cp.n_batch = batch;
    cp.n_ubatch = Math.min(batch, 512); // llama.cpp's default physical batch; bigger ones only grow compute buffers

    cp.n_seq_max = o.slots;
    cp.kv_unified = kvUnified(o);
  }
  const ctx = llama.llama_init_from_model(model, cp);
  if (!ctx)
    throw new LlmosError("model_load_failed", `llama.cpp could not create a${embeddings ? "n embedding" : ""} context`);
  llama.llama_attach_threadpool(ctx, tp.ptr, tp.ptr);
  return ctx;
}

/** One KV cache for all sequences, unless each sequence's share is already a multiple of 256 (see createContext). */
function kvUnified(o: EngineLoadOptions): boolean {
  const perSeq = Math.floor(o.contextSize / o.slots);
  return !(o.slots === 1 || (o.contextSize % o.slots === 0 && perSeq % 256 === 0));
}

function freeNative(bindings: Bindings, n: Partial<Native> & { adapters: Ptr[] }): void {
  const { llama } = bindings;
  for (const ctx of [n.embedCtx, n.ctx]) {
    if (!ctx) continue;
    llama.llama_detach_threadpool(ctx);
    llama.llama_free(ctx);
  }
  n.embedCtx = null;
  n.ctx = undefined;
  for (const a of n.adapters.splice(0)) llama.llama_adapter_lora_free(a);
  n.threadpools?.free();
  if (n.model) llama.llama_model_free(n.model);
  n.model = undefined;
}
