import { LlmosError } from "../errors.js";

/**
 * Token ids from a request (a pre-tokenized prompt, Ollama's `context`, detokenize input) must name tokens of the
 * model's vocabulary: llama.cpp fails the whole decode on an unknown id, and ids above 2^31-1 would wrap around in
 * its int32 token type.
 * @throws LlmosError `invalid_request` naming the parameter, the position and the id.
 */
export function checkTokenIds(tokens: readonly number[], vocabSize: number, param: string): void {
  for (let i = 0; i < tokens.length; i++) {
    const id = tokens[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
      throw new LlmosError(
        "invalid_request",
        `${param}[${i}] = ${id} is not a token id of this model (its vocabulary has ids 0 to ${vocabSize - 1})`,
        { param: `${param}[${i}]` },
      );
  }
}
