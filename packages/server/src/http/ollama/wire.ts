/**
 * Ollama's shapes of a generation: NDJSON lines `{model, created_at, response | message, done: false}` while it
 * streams, then one `done: true` line with the done reason, Ollama's timings and counts, and for `/api/generate`
 * the `context` tokens; the same final object is the whole body when not streamed.
 */
import type { GenerationOutcome } from "../../inference/inference-service.js";
import type { WireFormat } from "../generation-response.js";
import { doneReason, ollamaMetrics, ollamaToolCall } from "./translate.js";

export interface OllamaWireOptions {
  kind: "generate" | "chat";
  model: string;
  /** Ollama's `context` of `/api/generate`: prompt and response as token ids (absent in raw mode). */
  context?: ((response: string) => Promise<number[]>) | undefined;
}

export function ollamaWire(o: OllamaWireOptions): WireFormat {
  const piece = (text: string) =>
    o.kind === "generate" ? { response: text } : { message: { role: "assistant", content: text } };
  const line = (fields: Record<string, unknown>) => ({
    model: o.model,
    created_at: new Date().toISOString(),
    ...fields,
    done: false,
  });
  const final = async (outcome: GenerationOutcome, text: string, fields: Record<string, unknown>) => ({
    model: o.model,
    created_at: new Date().toISOString(),
    ...fields,
    done: true,
    done_reason: doneReason(outcome),
    ...(o.context ? { context: await o.context(text) } : {}),
    ...ollamaMetrics(outcome),
  });

  return {
    contentType: "application/x-ndjson",
    errorStyle: "ollama",
    opening: () => [],
    text: (_index, text) => (text ? [line(piece(text))] : []),
    async choiceEnd(c, held) {
      const frames: unknown[] = [];
      if (c.toolCall)
        frames.push(line({ message: { role: "assistant", content: "", tool_calls: [ollamaToolCall(c.toolCall)] } }));
      else if (held) frames.push(line(piece(held)));
      frames.push(await final(c.outcome, c.text, piece("")));
      return frames;
    },
    closing: () => [],
    async body([c]) {
      if (!c) throw new Error("an Ollama answer has one choice");
      const message = c.toolCall
        ? { role: "assistant", content: "", tool_calls: [ollamaToolCall(c.toolCall)] }
        : { role: "assistant", content: c.text };
      return final(c.outcome, c.text, o.kind === "generate" ? { response: c.text } : { message });
    },
  };
}
