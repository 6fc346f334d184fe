import type { GrammarSpec } from "../../engine/engine.js";
import { LlmosError } from "../../errors.js";
import type { ChatMessage, ChatTool } from "../../inference/chat-template.js";
import type { GenerationOutcome } from "../../inference/inference-service.js";
import type { ModelRecord } from "../../store/index.js";
import { checkJsonSchema } from "../openai/json-schema.js";
import { toolCallId, type ParsedToolCall } from "../openai/tools.js";
import type { OllamaMessage } from "./schemas.js";

/** Ollama's `details` object of a model. */
export interface OllamaDetails {
  parent_model: string;
  format: string;
  family: string;
  families: string[];
  parameter_size: string;
  quantization_level: string;
}

export function ollamaDetails(record: ModelRecord): OllamaDetails {
  const s = record.summary;
  return {
    parent_model: "",
    format: "gguf",
    family: s.architecture,
    families: [s.architecture],
    parameter_size: s.parameterSize,
    quantization_level: s.quantization,
  };
}

/** `details` for a model whose record is gone (deleted while loaded). */
export const UNKNOWN_DETAILS: OllamaDetails = {
  parent_model: "",
  format: "gguf",
  family: "",
  families: [],
  parameter_size: "",
  quantization_level: "",
};

const ns = (ms: number) => Math.max(0, Math.round(ms * 1e6));

/**
 * Ollama's timing and count fields (nanoseconds), from what the generation measured. Like Ollama,
 * `prompt_eval_count` counts every prompt token whether or not its KV cells came from the cache (ollama/ollama#5371:
 * caching must not change the counts clients bill by); `prompt_eval_duration` is the time actually spent, and
 * `prompt_eval_cached_count` (an llmos field) says how many tokens the cache supplied.
 */
export function ollamaMetrics(o: GenerationOutcome) {
  return {
    total_duration: ns(o.totalMs),
    load_duration: ns(o.loadMs),
    prompt_eval_count: o.promptTokens,
    prompt_eval_cached_count: o.cachedPromptTokens,
    prompt_eval_duration: ns(o.promptMs),
    eval_count: o.completionTokens,
    eval_duration: ns(o.generateMs),
  };
}

/** Ollama's done_reason: "stop" or "length" ("cancelled" never reaches a client that is still there). */
export function doneReason(o: GenerationOutcome): "stop" | "length" {
  return o.finishReason === "length" ? "length" : "stop";
}

/** Ollama `format` -> grammar: `"json"` is any JSON, an object is a JSON schema. */
export function grammarFromFormat(format: unknown): GrammarSpec | undefined {
  if (format === undefined || format === null || format === "") return undefined;
  if (format === "json") return { type: "json" };
  return { type: "json_schema", schema: checkJsonSchema(format, "format") };
}

/** Ollama messages -> llmos chat messages (tool-call arguments are objects in Ollama, JSON text in llmos). */
export function ollamaMessages(messages: OllamaMessage[], limit: number): ChatMessage[] {
  if (messages.length > limit)
    throw new LlmosError("invalid_request", `at most ${limit} messages are allowed, got ${messages.length}`, {
      param: "messages",
    });
  return messages.map((m, i) => {
    if (m.images && m.images.length > 0) rejectImages(`messages[${i}].images`);
    const msg: ChatMessage = { role: m.role, content: m.content ?? "" };
    if (m.tool_name) msg.name = m.tool_name;
    if (m.tool_calls?.length) {
      msg.tool_calls = m.tool_calls.map((c) => ({
        id: toolCallId(),
        type: "function" as const,
        function: {
          name: c.function.name,
          arguments:
            typeof c.function.arguments === "string" ? c.function.arguments : JSON.stringify(c.function.arguments),
        },
      }));
    }
    return msg;
  });
}

export function rejectImages(param: string): never {
  throw new LlmosError("invalid_request", `${param}: images are not supported (llmos serves text-only models)`, {
    param,
  });
}

/** Ollama tools -> llmos tools. */
export function ollamaTools(
  tools: Array<{ function: { name: string; description?: string; parameters?: Record<string, unknown> } }>,
): ChatTool[] {
  return tools.map((t) => ({
    type: "function",
    function: {
      name: t.function.name,
      ...(t.function.description ? { description: t.function.description } : {}),
      ...(t.function.parameters ? { parameters: t.function.parameters } : {}),
    },
  }));
}

/** A parsed call in Ollama's shape. */
export function ollamaToolCall(call: ParsedToolCall) {
  return { function: { name: call.name, arguments: call.arguments } };
}
