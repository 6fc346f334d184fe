/** A value of a PARAMETER line: numbers, booleans, strings, or a list of strings for repeatable ones (stop). */
export type ParameterValue = number | boolean | string | string[];

/** One MESSAGE line of a definition. */
export interface DefinitionMessage {
  role: string;
  content: string;
}

/**
 * What a model adds on top of its weights: request defaults, prompts and license (Ollama's Modelfile, minus the
 * blobs). Stored in the manifest; adapters live in the manifest's `adapters` list as blobs.
 */
export interface ModelDefinition {
  /** What FROM named when the model was created (a model name, a file path or a digest); informational. */
  from?: string;
  /** Request defaults (PARAMETER lines), validated names and types. */
  parameters: Record<string, ParameterValue>;
  /** System prompt (SYSTEM). */
  system?: string;
  /** Prompt template (TEMPLATE). */
  template?: string;
  /** Conversation seed (MESSAGE lines). */
  messages: DefinitionMessage[];
  /** License text (LICENSE; several are joined with a blank line). */
  license?: string;
}

/** A definition with nothing in it. */
export function emptyDefinition(from?: string): ModelDefinition {
  return from === undefined ? { parameters: {}, messages: [] } : { from, parameters: {}, messages: [] };
}
