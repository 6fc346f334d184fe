import type { GrammarSpec } from "../engine.js";

/**
 * Stop strings a grammar needs from the generation loop. node-llama-cpp's JSON-schema-to-GBNF converter, which
 * both engines use, ends its grammar in `"\n\n\n\n" [\n]*` and leaves it to the caller to stop there: without the
 * stop, a model that has closed its JSON keeps emitting newlines until max_tokens.
 */
export function grammarStops(grammar: GrammarSpec | undefined): string[] {
  return grammar?.type === "json_schema" ? ["\n\n\n\n"] : [];
}
