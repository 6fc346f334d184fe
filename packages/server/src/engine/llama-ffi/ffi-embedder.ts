/**
 * Mean-pooled embeddings of one loaded model, in its embedding context (one sequence, made on first use). A causal
 * model's long input is decoded in chunks of {@link EMBED_CHUNK} tokens (the KV cache carries the earlier ones) and
 * the chunks' means are combined by their token counts: the same mean, with the decode loop free for other
 * sequences between chunks, and `isCancelled` checked before each chunk. Embeddings share the context and its KV
 * cache: one at a time, chunk after chunk.
 */
import koffi from "koffi";
import { LlmosError } from "../../errors.js";
import {
  CancelledError,
  ContextOverflowError,
  type EmbedOptions,
  type Embedding,
  type EngineLoadOptions,
} from "../engine.js";
import type { BatchScheduler } from "./batch-scheduler.js";
import type { Bindings } from "./bindings.js";
import { createContext, type Native } from "./native-model.js";
import type { VocabText } from "./vocab-text.js";

/** Tokens of a long embedding input decoded per step (a causal model's input is split; see `embed`). */
export const EMBED_CHUNK = 256;

export interface EmbedderParts {
  bindings: Bindings;
  native: Native;
  options: EngineLoadOptions;
  vocabText: VocabText;
  /** Decodes run inside its loop: both contexts share one threadpool and one thread of control. */
  scheduler: BatchScheduler;
  embeddingSize: number;
  perSequenceLimit: number;
  /** Token states of a causal model do not depend on later tokens: long inputs may be decoded in chunks. */
  causal: boolean;
  /** Tokens per chunk (causal models); default {@link EMBED_CHUNK}. */
  chunkTokens?: number;
  /** Throws when the model is disposed. */
  assertLive: () => void;
}

export class FfiEmbedder {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly chunkTokens: number;

  constructor(private readonly parts: EmbedderParts) {
    this.chunkTokens = Math.max(1, parts.chunkTokens ?? EMBED_CHUNK);
  }

  async embed(text: string, options: EmbedOptions = {}): Promise<Embedding> {
    const { parts } = this;
    parts.assertLive();
    let tokens = parts.vocabText.tokenize(text, true, false);
    if (tokens.length === 0) throw new LlmosError("invalid_request", "text to embed is empty");
    if (tokens.length > parts.perSequenceLimit) {
      if (!options.truncate) throw new ContextOverflowError(tokens.length, parts.perSequenceLimit);
      tokens = tokens.slice(0, parts.perSequenceLimit);
    }
    const run = this.queue.then(async () => {
      const chunk = parts.causal ? this.chunkTokens : tokens.length;
      const sum = new Float64Array(parts.embeddingSize);
      for (let start = 0; start < tokens.length; start += chunk) {
        if (options.isCancelled?.()) throw new CancelledError("embedding cancelled");
        const part = tokens.slice(start, start + chunk);
        const mean = await parts.scheduler.runExclusive(() => this.embedChunk(part, start));
        for (let i = 0; i < sum.length; i++) sum[i]! += mean[i]! * part.length;
      }
      return { vector: Array.from(sum, (x) => x / tokens.length), tokens: tokens.length };
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Decodes tokens at positions `start`... of the embedding sequence (cleared at 0); returns their mean state. */
  private embedChunk(tokens: number[], start: number): Float32Array {
    const { bindings, native, options } = this.parts;
    this.parts.assertLive();
    const { llama } = bindings;
    native.embedCtx ??= createContext(bindings, native.model, native.threadpools.current, options, true);
    const ctx = native.embedCtx;
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
      options.onProgress?.();
      const ptr = llama.llama_get_embeddings_seq(ctx, 0);
      if (!ptr) throw new Error("llama_get_embeddings_seq returned NULL");
      return new Float32Array(koffi.view(ptr, this.parts.embeddingSize * 4)).slice();
    } finally {
      llama.llama_batch_free(batch);
    }
  }
}
