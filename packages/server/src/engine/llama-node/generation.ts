import type { LlamaContextSequence, LlamaGrammarEvaluationState, LlamaModel, Token } from "node-llama-cpp";
import { AsyncChannel } from "../../lib/async-channel.js";
import type {
  EngineStats,
  FinishReason,
  GenerateChunk,
  GenerateParams,
  GenerateResult,
  Generation,
  TokenLogprob,
} from "../engine.js";
import { IncrementalDetokenizer, StopStringFilter } from "../text/stop-strings.js";

interface GenerationInput {
  model: LlamaModel;
  sequence: LlamaContextSequence;
  promptTokens: Token[];
  /** Leading prompt tokens the sequence already holds (kept; the rest of its context is erased first). */
  reuse: number;
  params: GenerateParams;
  grammar: Promise<LlamaGrammarEvaluationState> | undefined;
  counters: EngineStats;
  /** Called once the generation ended; `failed`: the sequence's state cannot be trusted. */
  release: (failed: boolean) => Promise<void>;
}

/** Runs one generation on one sequence of a node-llama-cpp context, streaming final text chunks. */
export function createGeneration(input: GenerationInput): Generation {
  let cancelled = false;
  const channel = new AsyncChannel<GenerateChunk>(() => (cancelled = true));
  const result = run(input, channel, () => cancelled).then(
    async (r) => {
      await input.release(false);
      return r;
    },
    async (error: unknown) => {
      await input.release(true);
      throw error;
    },
  );
  result.catch(() => undefined);
  return {
    result,
    cancel: () => {
      cancelled = true;
    },
    [Symbol.asyncIterator]: () => channel[Symbol.asyncIterator](),
  };
}

async function run(
  input: GenerationInput,
  channel: AsyncChannel<GenerateChunk>,
  isCancelled: () => boolean,
): Promise<GenerateResult> {
  const { model, sequence, promptTokens, params, counters } = input;
  const s = params.sampling;
  const history: Token[] = [...promptTokens];
  const stopFilter = new StopStringFilter(params.stop);
  const detok = new IncrementalDetokenizer((tokens) =>
    model.detokenize(tokens as Token[], false, history.slice(-8 - tokens.length, -tokens.length)),
  );
  const started = performance.now();
  let firstTokenAt = 0;
  let generated = 0;
  // node-llama-cpp ends the token stream by itself when a grammar is complete: that is a stop, like an EOG token.
  let finishReason: FinishReason = "stop";
  let stoppedByString = false;
  try {
    const grammarEvaluationState = input.grammar ? await input.grammar : undefined;
    const evaluateOptions = {
      temperature: s.temperature,
      topK: s.topK,
      topP: s.topP,
      minP: s.minP,
      ...(s.seed !== undefined ? { seed: s.seed } : {}),
      repeatPenalty:
        s.repeatPenalty !== 1 || s.presencePenalty !== 0 || s.frequencyPenalty !== 0
          ? {
              punishTokens: () => history.slice(-s.penaltyLastN),
              penalty: s.repeatPenalty,
              presencePenalty: s.presencePenalty,
              frequencyPenalty: s.frequencyPenalty,
            }
          : undefined,
      ...(grammarEvaluationState ? { grammarEvaluationState } : {}),
    } as const;
    if (params.maxTokens <= 0) return finish("length");
    // The prompt cache: keep the prefix the sequence holds, erase what follows it, evaluate only the rest.
    if (input.reuse === 0 && sequence.nextTokenIndex > 0) await sequence.clearHistory();
    else if (sequence.nextTokenIndex > input.reuse)
      await sequence.eraseContextTokenRanges([{ start: input.reuse, end: sequence.nextTokenIndex }]);
    const rest = promptTokens.slice(input.reuse);
    counters.promptTokens += rest.length;
    counters.cachedPromptTokens += input.reuse;
    const wantLogprobs = params.logprobs !== undefined;
    const stream = wantLogprobs
      ? sequence.evaluateWithMetadata(rest, { confidence: true, probabilities: true }, evaluateOptions as never)
      : sequence.evaluate(rest, evaluateOptions as never);
    for await (const item of stream as AsyncIterable<
      Token | { token: Token; confidence?: number; probabilities?: Map<Token, number> }
    >) {
      const token = (typeof item === "number" ? item : item.token) as Token;
      if (generated === 0) firstTokenAt = performance.now();
      if (isCancelled()) {
        finishReason = "cancelled";
        break;
      }
      const eog = params.stopAtEog !== false && model.isEogToken(token);
      if (eog) {
        finishReason = "stop";
        break;
      }
      generated++;
      counters.tokensGenerated++;
      history.push(token);
      const piece = detok.push(token);
      const filtered = stopFilter.push(piece);
      const logprobs =
        wantLogprobs && typeof item !== "number"
          ? [toLogprob(model, token, item.probabilities, params.logprobs ?? 0)]
          : undefined;
      if (filtered.text || logprobs)
        channel.push({ text: filtered.text, tokens: 1, ...(logprobs ? { logprobs } : {}) });
      if (filtered.stopped) {
        stoppedByString = true;
        finishReason = "stop";
        break;
      }
      // The sequence's context is full: stop rather than silently dropping the start of the text.
      if (generated >= params.maxTokens || history.length >= sequence.contextSize) {
        finishReason = "length";
        break;
      }
    }
    if (isCancelled()) finishReason = "cancelled";
    if (!stoppedByString && finishReason !== "cancelled") {
      const rest = stopFilter.push(detok.flush());
      const tail = rest.stopped ? rest.text : rest.text + stopFilter.flush();
      if (tail) channel.push({ text: tail, tokens: 0 });
    }
    return finish(finishReason);
  } catch (error) {
    channel.fail(error);
    throw error;
  }

  function finish(reason: FinishReason): GenerateResult {
    const end = performance.now();
    const firstAt = firstTokenAt || end;
    channel.close();
    return {
      finishReason: reason,
      promptTokens: promptTokens.length,
      cachedPromptTokens: params.maxTokens <= 0 ? 0 : input.reuse,
      completionTokens: generated,
      promptMs: firstAt - started,
      generateMs: end - firstAt,
    };
  }
}

function toLogprob(
  model: LlamaModel,
  token: Token,
  probabilities: Map<Token, number> | undefined,
  top: number,
): TokenLogprob {
  const p = probabilities?.get(token) ?? 0;
  const alternatives: TokenLogprob["top"] = [];
  if (probabilities && top > 0) {
    for (const [t, prob] of probabilities) {
      alternatives.push({ token: model.detokenize([t], false), logprob: Math.log(Math.max(prob, 1e-45)) });
      if (alternatives.length >= top) break;
    }
  }
  return { token: model.detokenize([token], false), logprob: Math.log(Math.max(p, 1e-45)), top: alternatives };
}
