import {
  getLlama,
  InsufficientMemoryError,
  LlamaGrammar,
  LlamaGrammarEvaluationState,
  LlamaLogLevel,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaEmbeddingContext,
  type LlamaModel,
  type Token,
} from "node-llama-cpp";
import {
  CancelledError,
  checkPromptTokens,
  ContextOverflowError,
  EngineBusyError,
  EngineOutOfMemoryError,
  InvalidInputError,
  type EmbedOptions,
  type Embedding,
  type CpuAllotment,
  type Engine,
  type EngineLoadOptions,
  type EngineModel,
  type EngineStats,
  type GenerateParams,
  type Generation,
  type ModelFacts,
} from "../engine.js";
import { jsonSchemaToGbnf } from "../../grammar/json-schema-gbnf.js";
import { chooseSlot } from "../prompt-cache/choose-slot.js";
import { createGeneration } from "./generation.js";

export type EngineLogger = (level: "error" | "warn" | "info" | "debug", message: string) => void;

/** The engine backed by node-llama-cpp: complete (grammars, LoRA, embeddings), slower per token than llama-ffi. */
export class LlamaNodeEngine implements Engine {
  readonly name = "llama-node";
  private disposed = false;

  private constructor(private readonly llama: Llama) {}

  static async create(opts: { threads: number; gpu: boolean; logger?: EngineLogger }): Promise<LlamaNodeEngine> {
    const llama = await getLlama({
      gpu: opts.gpu ? "auto" : false,
      build: "never",
      maxThreads: opts.threads,
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        const text = message.trim();
        if (!text) return;
        const mapped =
          level === LlamaLogLevel.error || level === LlamaLogLevel.fatal
            ? "error"
            : level === LlamaLogLevel.warn
              ? "warn"
              : "debug";
        opts.logger?.(mapped, text);
      },
    });
    return new LlamaNodeEngine(llama);
  }

  async load(options: EngineLoadOptions): Promise<EngineModel> {
    if (this.disposed) throw new Error("engine is disposed");
    try {
      const model = await this.llama.loadModel({
        modelPath: options.modelPath,
        gpuLayers: options.gpuLayers === "auto" ? "auto" : options.gpuLayers,
        ...(options.onProgress ? { onLoadProgress: options.onProgress } : {}),
      });
      try {
        return await LlamaNodeModel.create(this.llama, model, options);
      } catch (error) {
        await model.dispose();
        throw error;
      }
    } catch (error) {
      // node-llama-cpp says so itself when the model or its context does not fit.
      if (error instanceof InsufficientMemoryError) throw new EngineOutOfMemoryError(error.message, { cause: error });
      throw error;
    }
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.llama.dispose();
  }
}

/** A sequence of the context and the request that owns it. */
interface Slot {
  readonly id: number;
  readonly sequence: LlamaContextSequence;
  busy: boolean;
  lastUsed: number;
}

/**
 * One loaded model with a context of N sequences; llama.cpp batches the sequences' tokens together. Sequences keep
 * their context after a request (the prompt cache): a new prompt goes to the sequence holding the longest useful
 * common prefix (choose-slot.ts; node-llama-cpp cannot copy cells between sequences, so no prefix copies).
 */
class LlamaNodeModel implements EngineModel {
  readonly facts: ModelFacts;
  private readonly slots: Slot[] = [];
  private clock = 0;
  private embeddingContext: Promise<LlamaEmbeddingContext> | undefined;
  private disposed = false;

  private constructor(
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly options: EngineLoadOptions,
    private readonly counters: EngineStats,
    private readonly shared: { now: boolean },
  ) {
    for (let id = 0; id < options.slots; id++)
      this.slots.push({ id, sequence: context.getSequence(), busy: false, lastUsed: 0 });
    this.facts = {
      trainContextSize: model.trainContextSize,
      vocabSize: vocabSizeOf(model),
      embeddingSize: model.embeddingVectorSize,
      bosToken: model.tokens.bos,
      eosToken: model.tokens.eos,
      bosText: model.tokens.bosString ?? "",
      eosText: model.tokens.eosString ?? "",
    };
  }

  static async create(llama: Llama, model: LlamaModel, options: EngineLoadOptions): Promise<LlamaNodeModel> {
    const counters: EngineStats = {
      decodeBatches: 0,
      multiSequenceBatches: 0,
      maxSequencesInBatch: 0,
      tokensGenerated: 0,
      promptTokens: 0,
      contendedBatches: 0,
      cachedPromptTokens: 0,
      prefixCopies: 0,
    };
    const shared = { now: false };
    const context = await model.createContext({
      contextSize: options.contextSize,
      sequences: options.slots,
      // At most `threads`, at least one: node-llama-cpp gives each decode what `llama.maxThreads` allows, which
      // is how a CPU allotment reaches this engine (setCpuAllotment).
      threads: { ideal: options.threads, min: 1 },
      batchSize: options.batchSize ?? 512,
      ...(options.kvCacheType
        ? {
            experimentalKvCacheKeyType: options.kvCacheType.k.toUpperCase() as "F16" | "Q8_0" | "Q4_0",
            experimentalKvCacheValueType: options.kvCacheType.v.toUpperCase() as "F16" | "Q8_0" | "Q4_0",
          }
        : {}),
      ...(options.loraAdapters?.length
        ? { lora: { adapters: options.loraAdapters.map((a) => ({ filePath: a.path, scale: a.scale })) } }
        : {}),
      batching: {
        // Share each decode batch fairly between sequences, and count how many sequences each batch carried.
        itemPrioritizationStrategy: ({ items, size }) => {
          const plan = fairShare(items, size);
          countBatch(counters, plan.filter((p) => p.processAmount > 0).length, shared.now);
          return plan;
        },
      },
    });
    return new LlamaNodeModel(llama, model, context, options, counters, shared);
  }

  get perSequenceContext(): number {
    return Math.floor(this.context.contextSize);
  }

  generate(params: GenerateParams): Generation {
    if (this.disposed) throw new Error("model is disposed");
    if (!this.slots.some((s) => !s.busy)) throw new EngineBusyError(`all ${this.options.slots} sequences are busy`);
    const promptTokens = this.promptTokens(params);
    const room = this.slots[0]!.sequence.contextSize;
    if (promptTokens.length + 1 > room) throw new ContextOverflowError(promptTokens.length, room);
    const choice = chooseSlot(
      this.slots.map((s) => ({ id: s.id, tokens: s.sequence.contextTokens, busy: s.busy, lastUsed: s.lastUsed })),
      promptTokens,
      { reuse: params.cachePrompt ?? true, copyCostTokens: Infinity, minMatchFraction: 0.1 },
    )!;
    const slot = this.slots[choice.seqId]!;
    slot.busy = true;
    slot.lastUsed = ++this.clock;
    const grammar = params.grammar ? this.grammarState(params) : undefined;
    return createGeneration({
      model: this.model,
      sequence: slot.sequence,
      promptTokens,
      reuse: choice.reuse,
      params,
      grammar,
      counters: this.counters,
      release: async (failed) => {
        if (failed) await slot.sequence.clearHistory().catch(() => undefined);
        slot.busy = false;
        slot.lastUsed = ++this.clock;
      },
    });
  }

  private promptTokens(params: GenerateParams): Token[] {
    if (Array.isArray(params.prompt)) {
      checkPromptTokens(params.prompt, this.facts.vocabSize || Infinity);
      return params.prompt as Token[];
    }
    const tokens = this.model.tokenize(params.prompt, true);
    const bos = this.model.tokens.bos;
    const wantBos = (params.addBos ?? true) && this.model.tokens.shouldPrependBosToken && bos != null;
    if (wantBos && tokens[0] !== bos) tokens.unshift(bos);
    return tokens;
  }

  private grammarState(params: GenerateParams): Promise<LlamaGrammarEvaluationState> {
    const spec = params.grammar!;
    const make = async () => {
      const grammar =
        spec.type === "json_schema"
          ? // llmos' own converter, as in llama-ffi, so both engines honour the same schemas.
            new LlamaGrammar(this.llama, { grammar: jsonSchemaToGbnf(spec.schema) })
          : spec.type === "json"
            ? await this.llama.getGrammarFor("json")
            : new LlamaGrammar(this.llama, {
                grammar: spec.grammar,
                ...(spec.root ? { rootRuleName: spec.root } : {}),
              });
      return new LlamaGrammarEvaluationState({ model: this.model, grammar });
    };
    // llama.cpp refusing the grammar is a problem of the request's schema or grammar, not of the runner.
    return make().catch((error: unknown) => {
      throw new InvalidInputError(`invalid grammar: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  async embed(text: string, options: EmbedOptions = {}): Promise<Embedding> {
    // node-llama-cpp embeds an input in one call: cancellation is checked before it starts.
    if (options.isCancelled?.()) throw new CancelledError("embedding cancelled");
    this.embeddingContext ??= this.model.createEmbeddingContext({
      contextSize: this.embeddingContextSize(),
      threads: this.options.threads,
    });
    const ctx = await this.embeddingContext;
    let tokens = this.model.tokenize(text);
    const room = this.embeddingContextSize();
    if (tokens.length + 1 > room) {
      if (!options.truncate) throw new ContextOverflowError(tokens.length + 1, room);
      tokens = tokens.slice(0, room - 1);
    }
    const embedding = await ctx.getEmbeddingFor(tokens);
    this.options.onProgress?.();
    return { vector: Array.from(embedding.vector), tokens: tokens.length + 1 };
  }

  private embeddingContextSize(): number {
    return Math.min(this.model.trainContextSize, Math.max(512, this.options.contextSize));
  }

  tokenize(text: string, opts?: { addBos?: boolean; parseSpecial?: boolean }): number[] {
    const tokens = this.model.tokenize(text, opts?.parseSpecial ?? false);
    const bos = this.model.tokens.bos;
    if (opts?.addBos && bos != null && tokens[0] !== bos) tokens.unshift(bos);
    return tokens;
  }

  detokenize(tokens: number[]): string {
    return this.model.detokenize(tokens as Token[], false);
  }

  stats(): EngineStats {
    return {
      ...this.counters,
      slots: this.slots.map((s) => ({ id: s.id, cachedTokens: s.sequence.nextTokenIndex, busy: s.busy })),
    };
  }

  /**
   * The thread count reaches node-llama-cpp as the process's thread budget (`llama.maxThreads`), which its next
   * decode takes its threads from; up to the `threads` the model was loaded with. Holding decoding (0 threads) is
   * not supported here.
   */
  async setCpuAllotment({ threads, shared }: CpuAllotment): Promise<void> {
    if (this.disposed) throw new Error("model is disposed");
    if (!Number.isInteger(threads) || threads < 1)
      throw new RangeError(`the llama-node engine needs at least one thread, got ${threads}`);
    this.llama.maxThreads = threads;
    this.shared.now = shared;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    if (this.embeddingContext) await (await this.embeddingContext).dispose();
    await this.context.dispose();
    await this.model.dispose();
  }
}

/** Gives every waiting sequence an equal share of the batch, then hands out what is left in order. */
function fairShare<T extends { tokens: readonly unknown[] }>(
  items: readonly T[],
  size: number,
): Array<{ item: T; processAmount: number }> {
  const plan = items.map((item) => ({ item, processAmount: 0 }));
  let left = size;
  const share = Math.max(1, Math.floor(size / Math.max(1, items.length)));
  for (const p of plan) {
    const n = Math.min(p.item.tokens.length, share, left);
    p.processAmount = n;
    left -= n;
  }
  for (const p of plan) {
    if (left <= 0) break;
    const n = Math.min(p.item.tokens.length - p.processAmount, left);
    p.processAmount += n;
    left -= n;
  }
  return plan;
}

function vocabSizeOf(model: LlamaModel): number {
  const tokens = (model.fileInfo.metadata as unknown as { tokenizer?: { ggml?: { tokens?: unknown[] } } }).tokenizer
    ?.ggml?.tokens;
  return Array.isArray(tokens) ? tokens.length : 0;
}

function countBatch(counters: EngineStats, sequences: number, contended: boolean): void {
  counters.decodeBatches++;
  if (contended) counters.contendedBatches++;
  if (sequences > 1) counters.multiSequenceBatches++;
  counters.maxSequencesInBatch = Math.max(counters.maxSequencesInBatch, sequences);
}
