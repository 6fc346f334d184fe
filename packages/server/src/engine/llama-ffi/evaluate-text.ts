/**
 * `llmos eval`: perplexity of a model over a text in llama-perplexity's chunking (tokens of the whole text with
 * BOS, cut into chunks of `contextSize`; each chunk decoded alone with BOS first; the second half scored), and,
 * with a base model, the KL divergence of the model's token distributions from the base's on the same tokens.
 */
import { LlmosError } from "../../errors.js";
import { EvalAccumulator, type EvalStats } from "../eval/logit-stats.js";
import type { Bindings } from "./bindings.js";
import { ChunkEvaluator, type KvCacheTypeName } from "./chunk-evaluator.js";

/** Options of {@link evaluateText}. */
export interface EvaluateTextOptions {
  modelPath: string;
  /** Compare with this model (same vocabulary): KL divergence, top-token agreement, perplexity ratio. */
  basePath?: string;
  text: string;
  contextSize: number;
  threads: number;
  kvCacheType?: { k: KvCacheTypeName; v: KvCacheTypeName };
  baseKvCacheType?: { k: KvCacheTypeName; v: KvCacheTypeName };
  /** Evaluate at most this many chunks. Default: all the text holds. */
  maxChunks?: number;
}

/** What an evaluation found. */
export interface EvaluateTextResult extends EvalStats {
  contextSize: number;
  chunks: number;
  /** Tokens of the whole text. */
  textTokens: number;
}

/** Chunks of a token list: whole chunks only, as llama-perplexity cuts them. */
export function chunkCount(tokens: number, contextSize: number, maxChunks?: number): number {
  const n = Math.floor(tokens / contextSize);
  return maxChunks === undefined ? n : Math.min(n, maxChunks);
}

/** Runs the evaluation; `onChunk` after each chunk. Yields to the event loop between chunks. */
export async function evaluateText(
  bindings: Bindings,
  o: EvaluateTextOptions,
  onChunk: (done: number, total: number, partial: EvalStats) => void = () => {},
): Promise<EvaluateTextResult> {
  if (!Number.isInteger(o.contextSize) || o.contextSize < 8)
    throw new LlmosError("invalid_request", `the context must be at least 8 tokens, got ${o.contextSize}`);
  const load = (modelPath: string, kv: EvaluateTextOptions["kvCacheType"]) =>
    ChunkEvaluator.load(bindings, {
      modelPath,
      contextSize: o.contextSize,
      threads: o.threads,
      ...(kv ? { kvCacheType: kv } : {}),
    });
  const base = o.basePath ? load(o.basePath, o.baseKvCacheType) : undefined;
  let model: ChunkEvaluator | undefined;
  try {
    model = load(o.modelPath, o.kvCacheType);
    if (base && base.vocabSize !== model.vocabSize) {
      throw new LlmosError(
        "invalid_request",
        `the model and the base do not share a vocabulary (${model.vocabSize} vs ${base.vocabSize} tokens)`,
      );
    }
    const tokens = (base ?? model).tokenize(o.text);
    const chunks = chunkCount(tokens.length, o.contextSize, o.maxChunks);
    if (chunks < 1) {
      throw new LlmosError(
        "invalid_request",
        `the text is ${tokens.length} tokens; a context of ${o.contextSize} needs at least ${o.contextSize}`,
        { textTokens: tokens.length, contextSize: o.contextSize },
      );
    }
    const n = o.contextSize;
    const first = Math.floor(n / 2);
    const acc = new EvalAccumulator(model.vocabSize);
    for (let c = 0; c < chunks; c++) {
      const chunk = tokens.slice(c * n, (c + 1) * n);
      const next = chunk.slice(first + 1);
      const baseRows = base?.chunkLogits(chunk, first);
      acc.add(model.chunkLogits(chunk, first), next, n - 1 - first, baseRows);
      onChunk(c + 1, chunks, acc.result());
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return { ...acc.result(), contextSize: n, chunks, textTokens: tokens.length };
  } finally {
    model?.dispose();
    base?.dispose();
  }
}
