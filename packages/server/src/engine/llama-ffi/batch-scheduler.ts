/**
 * Continuous batching over one llama_context. The scheduler owns the context: every llama_decode goes through
 * its loop. Each step builds ONE llama_batch holding one token per generating sequence plus bounded prompt chunks
 * of sequences that joined, decodes it, samples each sequence with its own sampler chain, and streams text.
 * Sequences join and leave between steps; between steps the loop yields to the event loop (setImmediate), so
 * IPC messages such as cancel are handled after at most one decode.
 *
 * New requests are placed on a slot at the start of a step (never while a decode runs): the slot table picks the
 * sequence whose cached cells share the longest useful prefix with the prompt, keeps or copies those cells, and
 * only the rest of the prompt is evaluated. A finished sequence's cells stay for the next request.
 */
import koffi from "koffi";
import type { EngineStats, FinishReason } from "../engine.js";
import type { SlotTable } from "../prompt-cache/slot-table.js";
import type { BatchValue, LlamaApi, Ptr } from "./bindings.js";
import { summarizeLogits } from "./logprobs.js";
import { promptTakes } from "./prompt-order.js";
import { emitText, flushText, runningSequence, type Running, type SequenceJob } from "./running-sequence.js";
import type { VocabText } from "./vocab-text.js";

export type { SequenceJob } from "./running-sequence.js";

/** How llama_decode is called. "sync": on the main thread, one step per event-loop turn; "async": koffi worker. */
export type DecodeMode = "sync" | "async";

export interface BatchSchedulerOptions {
  llama: LlamaApi;
  ctx: Ptr;
  /** The context's slots and what their cells hold (the prompt cache). */
  slots: SlotTable;
  vocab: Ptr;
  vocabText: VocabText;
  /** Tokens per llama_decode (the context's n_batch). */
  batchCapacity: number;
  /** Positions each sequence may use. */
  perSequenceLimit: number;
  /** Upper bound of prompt tokens per step while other sequences are generating. */
  promptChunk: number;
  decodeMode: DecodeMode;
  /** Called when the loop stops: the last running sequence has left, or decoding is held (e.g. to put the threadpool to sleep). */
  onIdle?: () => void;
  /** Called after every decode (the runner reports it as progress to the daemon's watchdog). */
  onStep?: () => void;
}

export class BatchScheduler {
  private readonly llama: LlamaApi;
  private readonly batch: BatchValue;
  private readonly tokenView: Int32Array;
  private readonly posView: Int32Array;
  private readonly seqIdViews: Int32Array[];
  private readonly logitsView: Int8Array;
  private readonly nVocab: number;
  private readonly running: Running[] = [];
  /** Jobs waiting for the next step to be placed on a slot. */
  private readonly pending: SequenceJob[] = [];
  private readonly exclusive: Array<() => void> = [];
  private scheduled = false;
  private stepping: Promise<void> | undefined;
  private disposed = false;
  /** Decoding is held (a CPU allotment of 0 threads): sequences wait, cancels and exclusive work still run. */
  private held = false;
  /** Other runners decode on the same cores: decode batches count as contended. */
  private contended = false;
  private readonly counters: EngineStats = {
    decodeBatches: 0,
    multiSequenceBatches: 0,
    maxSequencesInBatch: 0,
    tokensGenerated: 0,
    promptTokens: 0,
    contendedBatches: 0,
    cachedPromptTokens: 0,
    prefixCopies: 0,
  };

  constructor(private readonly o: BatchSchedulerOptions) {
    this.llama = o.llama;
    this.nVocab = o.vocabText.nTokens;
    const cap = o.batchCapacity;
    this.batch = o.llama.llama_batch_init(cap, 0, 1);
    const b = this.batch;
    this.tokenView = new Int32Array(koffi.view(b.token!, cap * 4));
    this.posView = new Int32Array(koffi.view(b.pos!, cap * 4));
    new Int32Array(koffi.view(b.n_seq_id!, cap * 4)).fill(1);
    const seqPtrs = new BigUint64Array(koffi.view(b.seq_id!, cap * 8));
    this.seqIdViews = Array.from(seqPtrs, (p) => new Int32Array(koffi.view(p, 4)));
    this.logitsView = new Int8Array(koffi.view(b.logits!, cap));
  }

  /** Counters since load, and what each slot holds. */
  stats(): EngineStats {
    return { ...this.counters, slots: this.o.slots.summary() };
  }

  /** Sequences currently running (prompt or generating). */
  get activeCount(): number {
    return this.running.length;
  }

  /** Slots that a new job could still take (free slots not promised to a waiting job). */
  get freeSlots(): number {
    return this.o.slots.free - this.pending.length;
  }

  /** Queue a job; the next step places it on a slot. The caller checks `freeSlots` first. */
  start(job: SequenceJob): void {
    if (this.disposed) throw new Error("scheduler is disposed");
    if (this.freeSlots <= 0) throw new Error("no free slot");
    this.pending.push(job);
    this.wake();
  }

  /** Called whenever something changed (new job, cancel): make sure a step runs soon. */
  wake(): void {
    if (this.scheduled || this.disposed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.stepping) this.stepping = this.step().finally(() => (this.stepping = undefined));
    });
  }

  /**
   * Holds decoding (true) or resumes it (false), and records whether other runners share the cores. Call between
   * decode steps (from `runExclusive`).
   */
  setCpuState(state: { held: boolean; contended: boolean }): void {
    this.contended = state.contended;
    if (this.held === state.held) return;
    this.held = state.held;
    if (!state.held) this.wake();
  }

  /** Run `fn` between decode steps (e.g. an embedding decode on another context sharing the threadpool). */
  runExclusive<T>(fn: () => T): Promise<T> {
    if (this.disposed) return Promise.reject(new Error("scheduler is disposed"));
    return new Promise<T>((resolve, reject) => {
      this.exclusive.push(() => {
        try {
          resolve(fn());
        } catch (err) {
          reject(err);
        }
      });
      this.wake();
    });
  }

  /** Stop the loop, end every sequence as cancelled and free the batch. Idempotent. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    while (this.stepping) await this.stepping;
    for (const fn of this.exclusive.splice(0)) fn();
    for (const job of this.pending.splice(0)) this.dropUnstarted(job);
    for (const r of [...this.running]) this.finish(r, "cancelled");
    this.llama.llama_batch_free(this.batch);
  }

  private async step(): Promise<void> {
    try {
      for (const fn of this.exclusive.splice(0)) fn();
      if (this.disposed) return;
      for (const r of [...this.running]) if (r.generation.cancelled) this.finish(r, "cancelled");
      this.dropCancelledJobs();
      // Held: waiting jobs stay unplaced (their slot's cells untouched) until threads come back.
      if (this.held) return;
      this.admit();
      const n = this.fillBatch();
      if (n === 0) return;
      const rc = await this.decode(n);
      this.o.onStep?.();
      if (this.disposed) return;
      if (rc !== 0) {
        this.failBatch(new Error(`llama_decode failed (${rc})`));
        return;
      }
      this.recordDecoded();
      this.sampleOutputs();
    } catch (err) {
      this.failBatch(err);
    } finally {
      if (!this.disposed) {
        const work = this.running.length > 0 || this.pending.length > 0;
        if ((work && !this.held) || this.exclusive.length > 0) this.wake();
        else this.o.onIdle?.();
      }
    }
  }

  /** Waiting jobs cancelled before they were placed end now, even while decoding is held. */
  private dropCancelledJobs(): void {
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const job = this.pending[i]!;
      if (!job.generation.cancelled) continue;
      this.pending.splice(i, 1);
      this.dropUnstarted(job);
    }
  }

  /** Place waiting jobs on slots: each starts after the prompt tokens its slot already holds. */
  private admit(): void {
    for (const job of this.pending.splice(0)) {
      if (job.generation.cancelled) {
        this.dropUnstarted(job);
        continue;
      }
      let placed: ReturnType<SlotTable["admit"]>;
      try {
        placed = this.o.slots.admit(job.prompt, job.cachePrompt);
        if (!placed) throw new Error("no free slot for a queued generation"); // start() checks freeSlots
      } catch (err) {
        this.llama.llama_sampler_free(job.sampler);
        job.generation.fail(err);
        continue;
      }
      this.counters.cachedPromptTokens += placed.reused;
      if (placed.copiedFrom !== null) this.counters.prefixCopies++;
      // Kept in ascending sequence id order: with one KV stream per sequence, llama.cpp's micro-batch split takes
      // only consecutive ids together, so a batch in any other order becomes several graph computations.
      const at = this.running.findIndex((r) => r.seqId > placed.seqId);
      this.running.splice(at < 0 ? this.running.length : at, 0, runningSequence(job, placed.seqId, placed.reused));
    }
  }

  /** Put generating tokens, then prompt chunks, into the batch. Returns the token count. */
  private fillBatch(): number {
    const cap = this.o.batchCapacity;
    let n = 0;
    let sequences = 0;
    for (const r of [...this.running]) {
      r.outIndex = -1;
      r.stepPromptCount = 0;
      if (r.nextToken < 0) continue;
      if (r.nPast >= this.o.perSequenceLimit) {
        this.finish(r, "length");
        continue;
      }
      this.put(n, r.nextToken, r.nPast, r.seqId, true);
      r.outIndex = n++;
      sequences++;
    }
    const takes = promptTakes(this.running, n > 0 ? Math.min(this.o.promptChunk, cap - n) : cap);
    for (const r of this.running) {
      const take = takes.get(r) ?? 0;
      if (take === 0) continue;
      for (let j = 0; j < take; j++) {
        const i = r.promptDone + j;
        this.put(n++, r.prompt[i]!, r.nPast + j, r.seqId, i === r.prompt.length - 1);
      }
      if (r.promptDone + take === r.prompt.length) r.outIndex = n - 1;
      r.stepPromptFrom = r.promptDone;
      r.stepPromptCount = take;
      r.promptDone += take;
      r.nPast += take;
      sequences++;
      this.counters.promptTokens += take;
    }
    if (n > 0) {
      if (sequences > 1) this.counters.multiSequenceBatches++;
      this.counters.maxSequencesInBatch = Math.max(this.counters.maxSequencesInBatch, sequences);
      if (this.running.some((r) => r.outIndex >= 0)) {
        this.counters.decodeBatches++;
        if (this.contended) this.counters.contendedBatches++;
      }
    }
    return n;
  }

  private put(i: number, token: number, pos: number, seqId: number, output: boolean): void {
    this.tokenView[i] = token;
    this.posView[i] = pos;
    this.seqIdViews[i]![0] = seqId;
    this.logitsView[i] = output ? 1 : 0;
  }

  private decode(n: number): Promise<number> | number {
    this.batch.n_tokens = n;
    if (this.o.decodeMode === "sync") return this.llama.llama_decode(this.o.ctx, this.batch);
    return new Promise<number>((resolve, reject) =>
      this.llama.llama_decode.async(this.o.ctx, this.batch, (err, rc) => (err ? reject(err) : resolve(rc))),
    );
  }

  /** The batch was decoded: its tokens are now in their sequences' cells, which the slot table records. */
  private recordDecoded(): void {
    for (const r of this.running) {
      if (r.nextToken >= 0) this.o.slots.append(r.seqId, [r.nextToken]);
      if (r.stepPromptCount > 0)
        this.o.slots.append(r.seqId, r.prompt.subarray(r.stepPromptFrom, r.stepPromptFrom + r.stepPromptCount));
    }
  }

  private sampleOutputs(): void {
    const now = performance.now();
    for (const r of [...this.running]) {
      if (r.nextToken >= 0) {
        r.nPast++; // the token decoded in this step is now in the KV cache
        r.nextToken = -1;
      }
      if (r.outIndex < 0) continue;
      if (r.promptDoneAt === 0) r.promptDoneAt = now;
      let summary: ReturnType<typeof summarizeLogits> | undefined;
      let row: Float32Array | undefined;
      if (r.logprobs !== undefined) {
        const ptr = this.llama.llama_get_logits_ith(this.o.ctx, r.outIndex);
        if (ptr) {
          row = new Float32Array(koffi.view(ptr, this.nVocab * 4));
          summary = summarizeLogits(row, r.logprobs);
        }
      }
      const token = this.llama.llama_sampler_sample(r.sampler, this.o.ctx, r.outIndex);
      r.completionTokens++;
      r.pendingTokens++;
      this.counters.tokensGenerated++;
      if (summary && row) {
        r.pendingLogprobs.push({
          token: this.o.vocabText.pieceBytes(token).toString("utf8"),
          logprob: row[token]! - summary.logSumExp,
          top: summary.top.map((t) => ({
            token: this.o.vocabText.pieceBytes(t.token).toString("utf8"),
            logprob: t.logprob,
          })),
        });
      }
      if (r.stopAtEog && this.llama.llama_vocab_is_eog(this.o.vocab, token)) {
        this.finish(r, "stop");
        continue;
      }
      const text = r.decoder.decode(this.o.vocabText.pieceBytes(token), { stream: true });
      const { text: out, stopped } = r.filter.push(text);
      if (out.length > 0) emitText(r, out);
      if (stopped) {
        this.finish(r, "stop", true);
        continue;
      }
      if (r.completionTokens >= r.maxTokens) {
        this.finish(r, "length");
        continue;
      }
      r.nextToken = token;
    }
  }

  /** End a sequence: flush held text (unless a stop string ended it), free its sampler and KV cells. */
  private finish(r: Running, reason: FinishReason, byStopString = false): void {
    const at = this.running.indexOf(r);
    if (at < 0) return;
    this.running.splice(at, 1);
    if (flushText(r, byStopString)) reason = "stop";
    this.release(r);
    const end = performance.now();
    const promptDoneAt = r.promptDoneAt || end;
    r.generation.finish({
      finishReason: reason,
      promptTokens: r.prompt.length,
      cachedPromptTokens: r.reused,
      completionTokens: r.completionTokens,
      promptMs: promptDoneAt - r.startedAt,
      generateMs: end - promptDoneAt,
    });
  }

  /** A job cancelled (or disposed of) before it was placed on a slot. */
  private dropUnstarted(job: SequenceJob): void {
    this.llama.llama_sampler_free(job.sampler);
    job.generation.finish({
      finishReason: "cancelled",
      promptTokens: job.prompt.length,
      cachedPromptTokens: 0,
      completionTokens: 0,
      promptMs: 0,
      generateMs: 0,
    });
  }

  /** The sequence's cells stay in its slot (the prompt cache); the sampler goes. */
  private release(r: Running): void {
    this.llama.llama_sampler_free(r.sampler);
    this.o.slots.release(r.seqId);
  }

  /** A decode failed: every running sequence fails, and its cells are dropped (they are not trustworthy). */
  private failBatch(err: unknown): void {
    for (const r of [...this.running]) {
      const at = this.running.indexOf(r);
      this.running.splice(at, 1);
      this.o.slots.invalidate(r.seqId);
      this.release(r);
      r.generation.fail(err);
    }
  }
}
