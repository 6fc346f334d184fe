/**
 * One loaded model: llama_model + a generation context (n_seq_max = slots) driven by a BatchScheduler, an optional
 * embedding context (ffi-embedder.ts), LoRA adapters and the persistent threadpool shared by both contexts (one pool
 * per thread count the daemon allots, see ThreadpoolSet). The native resources are made and freed in
 * native-model.ts.
 */
import { LlmosError } from "../../errors.js";
import {
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
import type { Bindings, Ptr } from "./bindings.js";
import { BatchScheduler, type DecodeMode } from "./batch-scheduler.js";
import { SlotTable } from "../prompt-cache/slot-table.js";
import { kvSequenceOps } from "./kv-sequences.js";
import { FfiEmbedder } from "./ffi-embedder.js";
import { FfiGeneration } from "./ffi-generation.js";
import { gbnfFor } from "./grammar.js";
import { freeNative, kvUnified, loadNative, metaString, type Native } from "./native-model.js";
import { buildSamplerChain } from "./sampler-chain.js";
import { VocabText } from "./vocab-text.js";

/** Engine-level tuning that is not part of EngineLoadOptions. */
export interface FfiModelTuning {
  decodeMode: DecodeMode;
  promptChunk: number;
  gpu: boolean;
  /** ggml threadpool polling level 0-100; undefined = ggml's default. */
  threadpoolPoll: number | undefined;
  /** Tokens of a long embedding input decoded per step (causal models); default ffi-embedder.ts's EMBED_CHUNK. */
  embedChunk?: number;
  /**
   * What copying a cached prefix between slots costs, in prompt tokens, when each sequence has its own KV stream
   * (llama.cpp then copies the whole stream). Default 32; Infinity never copies.
   */
  prefixCopyCostTokens?: number;
}

export class LlamaFfiModel implements EngineModel {
  readonly facts: ModelFacts;
  private readonly vocab: Ptr;
  private readonly vocabText: VocabText;
  private readonly scheduler: BatchScheduler;
  private readonly perSequenceLimit: number;
  private readonly embedder: FfiEmbedder;
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
    const arch = metaString(bindings, native.model, "general.architecture");
    this.embedder = new FfiEmbedder({
      bindings,
      native,
      options,
      vocabText: this.vocabText,
      scheduler: this.scheduler,
      embeddingSize: this.facts.embeddingSize,
      perSequenceLimit: this.perSequenceLimit,
      causal: arch === undefined || metaString(bindings, native.model, `${arch}.attention.causal`) !== "false",
      ...(tuning.embedChunk !== undefined ? { chunkTokens: tuning.embedChunk } : {}),
      assertLive: () => this.assertLive(),
    });
  }

  /** Load the model, its context(s), threadpool and adapters. Frees everything it made if a step fails. */
  static load(
    bindings: Bindings,
    options: EngineLoadOptions,
    tuning: FfiModelTuning,
    onDispose: () => void,
  ): LlamaFfiModel {
    const native = loadNative(bindings, options, tuning.gpu, tuning.threadpoolPoll);
    try {
      return new LlamaFfiModel(bindings, native, options, tuning, onDispose);
    } catch (err) {
      freeNative(bindings, native);
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

  /** Mean-pooled embedding (ffi-embedder.ts: a causal model's long input is decoded in chunks). */
  embed(text: string, options: EmbedOptions = {}): Promise<Embedding> {
    return this.embedder.embed(text, options);
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
