/**
 * The engine interface: what a runner process needs from an inference library.
 * Only runner processes import engines. Two implementations: `llama-node` (node-llama-cpp)
 * and `llama-ffi` (libllama driven directly through koffi on the hot path).
 */

/** Options for loading one model into one context with N parallel sequences. */
export interface EngineLoadOptions {
  /** Absolute path of a validated GGUF file. */
  modelPath: string;
  /** Total context size in tokens (shared by all sequences: each gets contextSize / slots). */
  contextSize: number;
  /** Parallel sequences (slots) in the context. */
  slots: number;
  /** CPU threads for decoding. Always explicit. */
  threads: number;
  /** Layers to offload to the GPU. 0 = CPU only. "auto" lets the engine decide. */
  gpuLayers: number | "auto";
  /** LoRA adapters (GGUF) applied at load. */
  loraAdapters?: Array<{ path: string; scale: number }>;
  /** Also prepare an embedding context. */
  embeddings?: boolean;
  /** Max tokens decoded in one llama_decode call (default 512). */
  batchSize?: number;
  /** Element types of the K and V caches (default f16). q8_0/q4_0 need head sizes that are multiples of 32. */
  kvCacheType?: { k: "f16" | "q8_0" | "q4_0"; v: "f16" | "q8_0" | "q4_0" };
  /**
   * Called whenever the engine makes progress: a load step, a decode step, a chunk of an embedding. The runner
   * reports it to the daemon, whose watchdog kills a runner that has work and makes none.
   */
  onProgress?: () => void;
}

/** Options of one embedding. */
export interface EmbedOptions {
  /** Checked between chunks of a long input; when it returns true the embedding stops with `CancelledError`. */
  isCancelled?: () => boolean;
  /** An input longer than a sequence's context is cut to its first tokens (true) or refused (default). */
  truncate?: boolean;
}

/** One embedding: the mean-pooled vector (not normalised) and the tokens it covers (after any truncation). */
export interface Embedding {
  vector: number[];
  tokens: number;
}

/** Sampling settings of one generation. Defaults are applied by the caller (inference layer). */
export interface SamplingOptions {
  /** 0 = greedy. */
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  seed?: number;
  /** 1 = off. */
  repeatPenalty: number;
  /** 0 = off. */
  presencePenalty: number;
  /** 0 = off. */
  frequencyPenalty: number;
  /** How many recent tokens the penalties look at (default 64). */
  penaltyLastN: number;
}

/** A grammar constraint for one generation. */
export type GrammarSpec =
  | { type: "gbnf"; grammar: string; root?: string }
  | { type: "json_schema"; schema: Record<string, unknown> }
  | { type: "json" };

export interface GenerateParams {
  /** Text to tokenize (special tokens parsed), or pre-tokenized prompt. */
  prompt: string | number[];
  /** Prepend BOS when the vocabulary asks for it (default true for text prompts). */
  addBos?: boolean;
  /** Stop after this many generated tokens. */
  maxTokens: number;
  sampling: SamplingOptions;
  /** Stop strings: generation ends before the first occurrence; the stop string is not emitted. */
  stop: string[];
  grammar?: GrammarSpec;
  /** Return log-probabilities of sampled tokens and this many alternatives (0 = only the sampled). */
  logprobs?: number;
  /** Stop at end-of-generation tokens (default true). */
  stopAtEog?: boolean;
  /**
   * Reuse KV cells a slot already holds for a common prefix of the prompt (default true). False evaluates the whole
   * prompt (llama-server's `cache_prompt: false`); at temperature 0 the answer is the same either way.
   */
  cachePrompt?: boolean;
}

export interface TokenLogprob {
  token: string;
  logprob: number;
  top: Array<{ token: string; logprob: number }>;
}

/** One piece of streamed output: text that is final (never retracted by stop-string handling). */
export interface GenerateChunk {
  text: string;
  /** Tokens this chunk covers. */
  tokens: number;
  logprobs?: TokenLogprob[];
}

export type FinishReason = "stop" | "length" | "cancelled";

export interface GenerateResult {
  finishReason: FinishReason;
  /** Every token of the prompt, cached or not. */
  promptTokens: number;
  /**
   * Prompt tokens whose KV cells came from the prompt cache, kept from an earlier request, instead of being
   * evaluated; at most promptTokens - 1 (the last prompt token is always evaluated).
   */
  cachedPromptTokens: number;
  completionTokens: number;
  /** Milliseconds spent evaluating the prompt. */
  promptMs: number;
  /** Milliseconds spent generating after the prompt. */
  generateMs: number;
}

/** A handle on one generation in flight. */
export interface Generation extends AsyncIterable<GenerateChunk> {
  /** Resolves when the generation ended (normally, by stop/length, or cancelled). */
  readonly result: Promise<GenerateResult>;
  /** Ask the engine to stop at the next decode step. Idempotent. */
  cancel(): void;
}

export interface EngineStats {
  /** llama_decode calls that carried generation tokens. */
  decodeBatches: number;
  /** Decode calls that carried tokens of more than one sequence. */
  multiSequenceBatches: number;
  maxSequencesInBatch: number;
  tokensGenerated: number;
  /** Prompt tokens evaluated. */
  promptTokens: number;
  /** Of `decodeBatches`, those decoded while other runners were busy on the same cores (see setCpuAllotment). */
  contendedBatches: number;
  /** Prompt tokens taken from the prompt cache instead of being evaluated. */
  cachedPromptTokens: number;
  /** Shared prefixes copied from one slot's cells to another's. */
  prefixCopies: number;
  /** What each slot's KV cells hold (engines with a prompt cache). */
  slots?: Array<{ id: number; cachedTokens: number; busy: boolean }>;
}

/** The CPU share the daemon gives a runner (decided by the scheduler, applied between decode steps). */
export interface CpuAllotment {
  /** Decode threads from the next step on; 0 holds decoding (sequences wait) until a count above 0 comes. */
  threads: number;
  /** Other runners decode on the same cores meanwhile: the decode steps from now on count as contended. */
  shared: boolean;
}

export interface ModelFacts {
  trainContextSize: number;
  vocabSize: number;
  embeddingSize: number;
  bosToken: number | null;
  eosToken: number | null;
  /** Text of BOS/EOS tokens, for chat templates. */
  bosText: string;
  eosText: string;
}

/** A loaded model with its context. All methods may be called concurrently. */
export interface EngineModel {
  readonly facts: ModelFacts;
  /** Start a generation on a free sequence. Throws `EngineBusyError` when all slots are taken. */
  generate(params: GenerateParams): Generation;
  /** Mean-pooled embedding of the text (not normalised). Throws ContextOverflowError when too long, unless truncating. */
  embed(text: string, options?: EmbedOptions): Promise<Embedding>;
  tokenize(text: string, opts?: { addBos?: boolean; parseSpecial?: boolean }): number[];
  detokenize(tokens: number[]): string;
  stats(): EngineStats;
  /** Applies a CPU allotment between two decode steps; resolves once it is applied. */
  setCpuAllotment(allotment: CpuAllotment): Promise<void>;
  /** Free the model, its contexts and sequences. Idempotent. */
  dispose(): Promise<void>;
}

export interface Engine {
  /** Stable name shown in `/api/ps` (`llama-node`, `llama-ffi`). */
  readonly name: string;
  load(options: EngineLoadOptions): Promise<EngineModel>;
  /** Release library resources. Idempotent. */
  dispose(): Promise<void>;
}

/** Thrown by `generate` when every sequence is busy (the scheduler should never let this happen). */
export class EngineBusyError extends Error {
  override readonly name = "EngineBusyError";
}

/**
 * Thrown when input does not fit the per-sequence context: `needed` is the input's tokens, `available` what a
 * sequence holds (a generation also needs room for one token after its prompt).
 */
export class ContextOverflowError extends Error {
  override readonly name = "ContextOverflowError";
  constructor(
    readonly needed: number,
    readonly available: number,
  ) {
    super(`the input has ${needed} tokens; a sequence holds ${available}`);
  }
}

/**
 * Thrown when the engine runs out of memory (weights, KV cache or compute buffers could not be allocated). The
 * runner reports it as an `oom` failure, on which the scheduler evicts idle models and retries the load once.
 */
export class EngineOutOfMemoryError extends Error {
  override readonly name = "EngineOutOfMemoryError";
}

/**
 * Thrown when a request's input cannot be used by this model (a token id outside the vocabulary, a grammar llama.cpp
 * refuses): the caller's mistake, answered with a 400, never a runner failure.
 */
export class InvalidInputError extends Error {
  override readonly name: string = "InvalidInputError";
}

/** Throws InvalidInputError unless every id is a token of a vocabulary of `vocabSize` tokens. */
export function checkPromptTokens(tokens: readonly number[], vocabSize: number): void {
  for (let i = 0; i < tokens.length; i++) {
    const id = tokens[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
      throw new InvalidInputError(`prompt token ${i} is ${id}, outside the vocabulary of ${vocabSize} tokens`);
  }
}

/** Thrown when work stopped because its caller cancelled it (e.g. an embedding whose client went away). */
export class CancelledError extends Error {
  override readonly name = "CancelledError";
}
