/** Rough characters per token for the pre-check (English text averages about four). */
const CHARS_PER_TOKEN = 4;

/**
 * Tokens a request may use, for the tokens-per-minute and daily pre-checks: the prompt (text length / 4)
 * plus the completion limit it asks for (`max_tokens`, `max_completion_tokens`, `max_output_tokens`, or
 * Ollama's `options.num_predict`). Actual usage is charged after the request.
 */
export function estimateRequestTokens(body: unknown): number {
  if (!body || typeof body !== "object") return 0;
  const b = body as Record<string, unknown>;
  let chars = 0;
  const addText = (v: unknown, depth = 0): void => {
    if (depth > 4) return;
    if (typeof v === "string") chars += v.length;
    else if (Array.isArray(v)) for (const x of v) addText(x, depth + 1);
    else if (v && typeof v === "object") {
      const o = v as Record<string, unknown>;
      addText(o.content, depth + 1);
      addText(o.text, depth + 1);
    }
  };
  addText(b.prompt);
  addText(b.system);
  addText(b.suffix);
  addText(b.input);
  addText(b.messages);
  const options = b.options && typeof b.options === "object" ? (b.options as Record<string, unknown>) : {};
  const completion = firstPositive(b.max_tokens, b.max_completion_tokens, b.max_output_tokens, options.num_predict);
  return Math.ceil(chars / CHARS_PER_TOKEN) + completion;
}

function firstPositive(...values: unknown[]): number {
  for (const v of values) if (typeof v === "number" && Number.isFinite(v) && v > 0) return Math.floor(v);
  return 0;
}
