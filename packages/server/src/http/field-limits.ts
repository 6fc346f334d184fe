/**
 * Length limits of request fields that reach the prompt renderers (Go templates, Jinja chat templates), in
 * characters. They are part of the request schemas, so `/openapi.json` documents them and a longer value is a 400
 * naming the field. Rendering is linear in these inputs (and bounded by step limits), so the limits keep one
 * request's cost small; the request body limit (8 MiB) bounds the rest.
 */
export const FIELD_LIMITS = Object.freeze({
  /** A Go template (Ollama's `template`, a definition's TEMPLATE): real ones are a few hundred characters. */
  template: 64 * 1024,
  /** A system prompt. */
  system: 1024 * 1024,
  /** A prompt or one message's content. */
  content: 4 * 1024 * 1024,
  /** One stop sequence. */
  stop: 1000,
  /** A tool's description. */
  toolDescription: 8192,
  /** A tool's name. */
  toolName: 64,
  /** A tool call's arguments (JSON text). */
  toolArguments: 64 * 1024,
});
