/** Builds one generation's llama.cpp sampler chain from its SamplingOptions and grammar. */
import { InvalidInputError, type SamplingOptions } from "../engine.js";
import { LLAMA_DEFAULT_SEED, type LlamaApi, type Ptr } from "./bindings.js";

/** Thrown when llama.cpp rejects a GBNF grammar (it logs the parse error). */
export class InvalidGrammarError extends InvalidInputError {
  override readonly name = "InvalidGrammarError";
}

/**
 * Chain order: grammar, penalties, then greedy, or top-k, top-p, min-p, temperature and dist(seed).
 * The returned chain owns its samplers; free it with `llama_sampler_free`.
 */
export function buildSamplerChain(
  llama: LlamaApi,
  vocab: Ptr,
  nVocab: number,
  s: SamplingOptions,
  grammar?: { grammar: string; root: string },
): Ptr {
  const chain = llama.llama_sampler_chain_init({ no_perf: true });
  try {
    if (grammar) {
      const g = llama.llama_sampler_init_grammar(vocab, grammar.grammar, grammar.root);
      if (!g) throw new InvalidGrammarError(`invalid GBNF grammar (root "${grammar.root}")`);
      llama.llama_sampler_chain_add(chain, g);
    }
    const penalize = s.repeatPenalty !== 1 || s.frequencyPenalty !== 0 || s.presencePenalty !== 0;
    if (penalize) {
      llama.llama_sampler_chain_add(
        chain,
        llama.llama_sampler_init_penalties(
          nVocab,
          s.penaltyLastN,
          s.repeatPenalty,
          s.frequencyPenalty,
          s.presencePenalty,
        ),
      );
    }
    if (s.temperature <= 0) {
      llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_greedy());
    } else {
      if (s.topK > 0) llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_top_k(s.topK));
      if (s.topP < 1) llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_top_p(s.topP, 1));
      if (s.minP > 0) llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_min_p(s.minP, 1));
      llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_temp(s.temperature));
      const seed = s.seed === undefined ? LLAMA_DEFAULT_SEED : s.seed >>> 0;
      llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_dist(seed));
    }
    return chain;
  } catch (err) {
    llama.llama_sampler_free(chain);
    throw err;
  }
}
