/**
 * OpenAI's shapes of a generation: `chat.completion` / `text_completion` bodies and their streamed
 * `chat.completion.chunk` / `text_completion` SSE events (role first, content deltas, tool calls as two deltas,
 * the finish reason, optional usage, `[DONE]`).
 */
import type { TokenLogprob } from "../../engine/engine.js";
import type { GenerationOutcome } from "../../inference/inference-service.js";
import type { FinishedChoice, WireFormat } from "../generation-response.js";
import { toolCallId } from "./tools.js";
import { finishReason, usageOf } from "./translate.js";

export interface OpenAIWireOptions {
  /** The response's id (`chatcmpl-...`, `cmpl-...`). */
  id: string;
  kind: "chat" | "completion";
  model: string;
  /** Choices (`n`). */
  choices: number;
  /** `stream_options.include_usage`: a last event with the usage and no choices. */
  includeUsage: boolean;
  version: string;
}

export function openaiWire(o: OpenAIWireOptions): WireFormat {
  const chat = o.kind === "chat";
  const id = o.id;
  const created = Math.floor(Date.now() / 1000);
  const fingerprint = `llmos-${o.version}`;
  const frame = (choices: unknown[], extra: Record<string, unknown> = {}) => ({
    id,
    object: chat ? "chat.completion.chunk" : "text_completion",
    created,
    model: o.model,
    system_fingerprint: fingerprint,
    choices,
    ...extra,
  });
  const delta = (index: number, d: Record<string, unknown>) =>
    frame([{ index, delta: d, logprobs: null, finish_reason: null }]);

  return {
    contentType: "text/event-stream",
    errorStyle: "openai",
    opening: () =>
      chat ? Array.from({ length: o.choices }, (_, i) => delta(i, { role: "assistant", content: "" })) : [],
    text(index, text, logprobs) {
      const lp = logprobs ? (chat ? { content: logprobs.map(chatLogprob) } : completionLogprobs(logprobs)) : null;
      return [
        frame([
          chat
            ? { index, delta: { content: text }, logprobs: lp, finish_reason: null }
            : { index, text, logprobs: lp, finish_reason: null },
        ]),
      ];
    },
    choiceEnd(c, held) {
      const frames: unknown[] = [];
      let reason: string = finishReason(c.outcome.finishReason);
      if (c.toolCall) {
        const call = {
          index: 0,
          id: toolCallId(),
          type: "function",
          function: { name: c.toolCall.name, arguments: "" },
        };
        frames.push(delta(c.index, { tool_calls: [call] }));
        frames.push(
          delta(c.index, { tool_calls: [{ index: 0, function: { arguments: JSON.stringify(c.toolCall.arguments) } }] }),
        );
        reason = "tool_calls";
      } else if (held) {
        frames.push(delta(c.index, { content: held }));
      }
      frames.push(
        frame([
          chat
            ? { index: c.index, delta: {}, logprobs: null, finish_reason: reason }
            : { index: c.index, text: "", logprobs: null, finish_reason: reason },
        ]),
      );
      return frames;
    },
    closing: (outcomes) => [...(o.includeUsage ? [frame([], { usage: usageOf(sumUsage(outcomes)) })] : []), "[DONE]"],
    body: (choices) => ({
      id,
      object: chat ? "chat.completion" : "text_completion",
      created,
      model: o.model,
      system_fingerprint: fingerprint,
      choices: choices.map((c) => (chat ? chatChoice(c) : completionChoice(c))),
      usage: usageOf(sumUsage(choices.map((c) => c.outcome))),
    }),
  };
}

function chatChoice(c: FinishedChoice) {
  if (c.toolCall) {
    const call = {
      id: toolCallId(),
      type: "function",
      function: { name: c.toolCall.name, arguments: JSON.stringify(c.toolCall.arguments) },
    };
    return {
      index: c.index,
      message: { role: "assistant", content: null, tool_calls: [call], refusal: null },
      logprobs: null,
      finish_reason: "tool_calls",
    };
  }
  return {
    index: c.index,
    message: { role: "assistant", content: c.text, refusal: null },
    logprobs: c.logprobs ? { content: c.logprobs.map(chatLogprob) } : null,
    finish_reason: finishReason(c.outcome.finishReason),
  };
}

function completionChoice(c: FinishedChoice) {
  return {
    index: c.index,
    text: c.text,
    logprobs: c.logprobs ? completionLogprobs(c.logprobs) : null,
    finish_reason: finishReason(c.outcome.finishReason),
  };
}

/** The usage of `n` choices: the prompt is shared by all of them, counted once, like OpenAI. */
function sumUsage(outcomes: GenerationOutcome[]): {
  promptTokens: number;
  cachedPromptTokens: number;
  completionTokens: number;
} {
  return {
    promptTokens: outcomes[0]?.promptTokens ?? 0,
    // The prompt is counted once, like OpenAI; so are its tokens the prompt cache served (the first choice's).
    cachedPromptTokens: outcomes[0]?.cachedPromptTokens ?? 0,
    completionTokens: outcomes.reduce((n, o) => n + o.completionTokens, 0),
  };
}

function chatLogprob(l: TokenLogprob) {
  const bytes = (t: string) => [...Buffer.from(t, "utf8")];
  return {
    token: l.token,
    logprob: l.logprob,
    bytes: bytes(l.token),
    top_logprobs: l.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: bytes(t.token) })),
  };
}

function completionLogprobs(list: TokenLogprob[]) {
  return {
    tokens: list.map((l) => l.token),
    token_logprobs: list.map((l) => l.logprob),
    top_logprobs: list.map((l) => Object.fromEntries(l.top.map((t) => [t.token, t.logprob]))),
    text_offset: list.reduce<number[]>(
      (acc, l, i) => (acc.push(i === 0 ? 0 : acc[i - 1]! + list[i - 1]!.token.length), acc),
      [],
    ),
  };
}
