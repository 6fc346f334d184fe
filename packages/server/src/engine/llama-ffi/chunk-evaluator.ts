/**
 * A model loaded to evaluate text in llama-perplexity's chunks: one sequence, a context of exactly `contextSize`
 * tokens, each chunk decoded from an empty cache with its first token replaced by BOS (when the vocabulary adds
 * one), and the logits of the chunk's second half returned. Used by `llmos eval` (perplexity, KL divergence) and
 * `llmos imatrix` (the eval callback sees every matrix product of the decode).
 */
import koffi from "koffi";
import { LlmosError } from "../../errors.js";
import { LLAMA_FLASH_ATTN_TYPE_AUTO, type Bindings, type Ptr } from "./bindings.js";
import { createThreadpool, type Threadpool } from "./threadpool.js";
import { VocabText } from "./vocab-text.js";

import { KV_CACHE_GGML_TYPES, type KvCacheTypeName } from "./kv-cache-types.js";
export type { KvCacheTypeName };

/** Options of {@link ChunkEvaluator.load}. */
export interface ChunkEvaluatorOptions {
  modelPath: string;
  /** Tokens per chunk (llama-perplexity's `-c`). */
  contextSize: number;
  threads: number;
  kvCacheType?: { k: KvCacheTypeName; v: KvCacheTypeName };
  /** `ggml_backend_sched_eval_callback` (a registered koffi callback pointer), for the imatrix collector. */
  evalCallback?: Ptr;
}

export class ChunkEvaluator {
  readonly vocabSize: number;
  readonly addBos: boolean;
  readonly bos: number;
  private readonly vocabText: VocabText;
  private disposed = false;

  private constructor(
    private readonly bindings: Bindings,
    private readonly model: Ptr,
    private readonly ctx: Ptr,
    private readonly threadpool: Threadpool,
    readonly contextSize: number,
  ) {
    const { llama } = bindings;
    const vocab = llama.llama_model_get_vocab(model);
    this.vocabSize = llama.llama_vocab_n_tokens(vocab);
    this.vocabText = new VocabText(llama, vocab, this.vocabSize);
    this.addBos = llama.llama_vocab_get_add_bos(vocab);
    this.bos = llama.llama_vocab_bos(vocab);
  }

  /** Loads the model and a context for one chunk; frees what it made when a step fails. */
  static load(bindings: Bindings, o: ChunkEvaluatorOptions): ChunkEvaluator {
    const { llama } = bindings;
    const mp = llama.llama_model_default_params();
    mp.n_gpu_layers = 0;
    const model = llama.llama_model_load_from_file(o.modelPath, mp);
    if (!model) throw new LlmosError("model_load_failed", `llama.cpp could not load ${o.modelPath}`);
    let threadpool: Threadpool | undefined;
    try {
      threadpool = createThreadpool(bindings, o.threads);
      const cp = llama.llama_context_default_params();
      cp.n_ctx = o.contextSize;
      cp.n_batch = o.contextSize;
      cp.n_ubatch = Math.min(512, o.contextSize);
      cp.n_seq_max = 1;
      cp.n_threads = o.threads;
      cp.n_threads_batch = o.threads;
      cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_AUTO;
      cp.no_perf = true;
      cp["type_k"] = KV_CACHE_GGML_TYPES[o.kvCacheType?.k ?? "f16"];
      cp["type_v"] = KV_CACHE_GGML_TYPES[o.kvCacheType?.v ?? "f16"];
      if (o.evalCallback) cp["cb_eval"] = o.evalCallback;
      const ctx = llama.llama_init_from_model(model, cp);
      if (!ctx) throw new LlmosError("model_load_failed", `llama.cpp could not create a context for ${o.modelPath}`);
      llama.llama_attach_threadpool(ctx, threadpool.ptr, threadpool.ptr);
      return new ChunkEvaluator(bindings, model, ctx, threadpool, o.contextSize);
    } catch (error) {
      threadpool?.free();
      llama.llama_model_free(model);
      throw error;
    }
  }

  /** Tokens of the whole text, with BOS first when the vocabulary adds it (llama-perplexity's tokenization). */
  tokenize(text: string): number[] {
    return this.vocabText.tokenize(text, true, false);
  }

  /**
   * Decodes one chunk (exactly `contextSize` tokens) from an empty cache and returns the logits of positions
   * `first .. contextSize - 2` (each predicts the token after it), one row of `vocabSize` floats per position,
   * copied out of llama.cpp's buffer.
   */
  chunkLogits(chunk: ArrayLike<number>, first: number): Float32Array {
    this.assertLive();
    const n = this.contextSize;
    if (chunk.length !== n) throw new RangeError(`a chunk has ${n} tokens, got ${chunk.length}`);
    const { llama } = this.bindings;
    llama.llama_memory_clear(llama.llama_get_memory(this.ctx), true);
    const batch = llama.llama_batch_init(n, 0, 1);
    try {
      const tok = new Int32Array(koffi.view(batch.token!, n * 4));
      const pos = new Int32Array(koffi.view(batch.pos!, n * 4));
      const nSeq = new Int32Array(koffi.view(batch.n_seq_id!, n * 4));
      const seqPtrs = new BigUint64Array(koffi.view(batch.seq_id!, n * 8));
      const logits = new Int8Array(koffi.view(batch.logits!, n));
      for (let i = 0; i < n; i++) {
        tok[i] = i === 0 && this.addBos && this.bos >= 0 ? this.bos : chunk[i]!;
        pos[i] = i;
        nSeq[i] = 1;
        new Int32Array(koffi.view(seqPtrs[i]!, 4))[0] = 0;
        logits[i] = i >= first ? 1 : 0;
      }
      batch.n_tokens = n;
      const rc = llama.llama_decode(this.ctx, batch);
      if (rc !== 0) throw new Error(`llama_decode failed (${rc})`);
      const rows = n - 1 - first;
      if (rows <= 0) return new Float32Array(0);
      const ptr = llama.llama_get_logits_ith(this.ctx, first);
      if (!ptr) throw new Error("llama_get_logits_ith returned NULL");
      // The outputs are contiguous in batch order (llama-perplexity reads them the same way).
      return new Float32Array(koffi.view(ptr, rows * this.vocabSize * 4)).slice();
    } finally {
      llama.llama_batch_free(batch);
    }
  }

  /** Frees the context, threadpool and model. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const { llama } = this.bindings;
    llama.llama_detach_threadpool(this.ctx);
    llama.llama_free(this.ctx);
    this.threadpool.free();
    llama.llama_model_free(this.model);
  }

  private assertLive(): void {
    if (this.disposed) throw new Error("evaluator is disposed");
  }
}
