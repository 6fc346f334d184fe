import { randomBytes } from "node:crypto";
import type { GrammarSpec } from "../../engine/engine.js";
import { LlmosError } from "../../errors.js";
import type { ChatMessage } from "../../inference/chat-template.js";
import type { SamplingInput } from "../../inference/sampling.js";
import { checkJsonSchema } from "./json-schema.js";
import type { ChatCompletionBody, CompletionBody } from "./schemas.js";
import { UNSUPPORTED_FIELDS } from "./schemas.js";

/** `chatcmpl-…` / `cmpl-…` ids like OpenAI's. */
export function completionId(prefix: "chatcmpl" | "cmpl"): string {
  return `${prefix}-${randomBytes(12).toString("base64url")}`;
}

export function rejectUnsupported(body: Record<string, unknown>): void {
  for (const field of UNSUPPORTED_FIELDS) {
    if (body[field] !== undefined && body[field] !== null) {
      throw new LlmosError("invalid_request", `"${field}" is not supported by llmos`, { param: field });
    }
  }
}

/** Maps OpenAI sampling fields onto llmos' option names. */
export function samplingFromOpenAI(body: ChatCompletionBody | CompletionBody, stopLimit: number): SamplingInput {
  const out: SamplingInput = {};
  const maxTokens =
    "max_completion_tokens" in body && body.max_completion_tokens != null
      ? body.max_completion_tokens
      : body.max_tokens;
  if (maxTokens != null) out.num_predict = maxTokens;
  if (body.temperature != null) out.temperature = body.temperature;
  if (body.top_p != null) out.top_p = body.top_p;
  if (body.top_k != null) out.top_k = body.top_k;
  if (body.min_p != null) out.min_p = body.min_p;
  if (body.seed != null) out.seed = body.seed;
  if (body.presence_penalty != null) out.presence_penalty = body.presence_penalty;
  if (body.frequency_penalty != null) out.frequency_penalty = body.frequency_penalty;
  if (body.repeat_penalty != null) out.repeat_penalty = body.repeat_penalty;
  if (body.stop != null) {
    const stop = Array.isArray(body.stop) ? body.stop : [body.stop];
    if (stop.length > stopLimit)
      throw new LlmosError("invalid_request", `at most ${stopLimit} stop sequences are allowed, got ${stop.length}`, {
        param: "stop",
      });
    out.stop = stop.filter((s) => s.length > 0);
  }
  return out;
}

/** Normalises OpenAI messages: text parts joined, `developer` treated as `system`, images rejected. */
export function chatMessages(body: ChatCompletionBody, messageLimit: number): ChatMessage[] {
  if (body.messages.length > messageLimit)
    throw new LlmosError(
      "invalid_request",
      `at most ${messageLimit} messages are allowed, got ${body.messages.length}`,
      { param: "messages" },
    );
  return body.messages.map((m, i) => {
    let content = "";
    if (typeof m.content === "string") content = m.content;
    else if (Array.isArray(m.content)) {
      content = m.content
        .map((part) => {
          if (part.type !== "text" || typeof part.text !== "string") {
            throw new LlmosError(
              "invalid_request",
              `messages[${i}]: content part type "${part.type}" is not supported (text only)`,
              { param: `messages[${i}].content` },
            );
          }
          return part.text;
        })
        .join("");
    }
    const role = m.role === "developer" ? "system" : m.role;
    const msg: ChatMessage = { role, content };
    if (m.name) msg.name = m.name;
    if (m.tool_calls) msg.tool_calls = m.tool_calls;
    if (m.tool_call_id) msg.tool_call_id = m.tool_call_id;
    return msg;
  });
}

/** response_format -> grammar (the schema is checked: what the grammar cannot enforce is a 400). */
export function grammarFromResponseFormat(format: ChatCompletionBody["response_format"]): GrammarSpec | undefined {
  if (!format || format.type === "text") return undefined;
  if (format.type === "json_object") return { type: "json" };
  const schema = format.json_schema.schema;
  if (!schema) return { type: "json" };
  return { type: "json_schema", schema: checkJsonSchema(schema, "response_format.json_schema.schema") };
}

export function logprobsCount(body: ChatCompletionBody | CompletionBody, chat: boolean): number | undefined {
  if (chat) {
    if (body.logprobs !== true) return undefined;
    return body.top_logprobs ?? 0;
  }
  if (typeof body.logprobs === "number") return body.logprobs;
  return undefined;
}

/** OpenAI's usage object; `cached_tokens`: prompt tokens whose KV cells came from the prompt cache. */
export function usageOf(r: { promptTokens: number; cachedPromptTokens?: number; completionTokens: number }) {
  return {
    prompt_tokens: r.promptTokens,
    completion_tokens: r.completionTokens,
    total_tokens: r.promptTokens + r.completionTokens,
    prompt_tokens_details: { cached_tokens: r.cachedPromptTokens ?? 0 },
  };
}

/** Finish reasons in OpenAI's words. */
export function finishReason(reason: string): "stop" | "length" {
  return reason === "length" ? "length" : "stop";
}

/** Little-endian float32 base64, as OpenAI's `encoding_format: "base64"`. */
export function embeddingBase64(vector: number[]): string {
  return Buffer.from(new Float32Array(vector).buffer).toString("base64");
}
