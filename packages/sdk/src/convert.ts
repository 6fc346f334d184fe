/** Conversions between the SDK's camelCase types and the OpenAI wire shapes (internal). */
import type { ChatMessage, ChatOptions, SamplingOptions, Tool, ToolCall, ToolChoice, Usage } from "./types.js";
import type { WireMessage, WireToolCall, WireUsage } from "./wire.js";

/** Maps sampling options to OpenAI request fields (undefined values are dropped by JSON.stringify). */
export function samplingFields(opts: SamplingOptions): Record<string, unknown> {
  return {
    max_tokens: opts.maxTokens,
    temperature: opts.temperature,
    top_p: opts.topP,
    top_k: opts.topK,
    min_p: opts.minP,
    seed: opts.seed,
    stop: opts.stop,
    presence_penalty: opts.presencePenalty,
    frequency_penalty: opts.frequencyPenalty,
  };
}

export function usageFrom(wire: WireUsage | null | undefined): Usage | undefined {
  if (!wire) return undefined;
  const promptTokens = wire.prompt_tokens ?? 0;
  const completionTokens = wire.completion_tokens ?? 0;
  return { promptTokens, completionTokens, totalTokens: wire.total_tokens ?? promptTokens + completionTokens };
}

export function toolCallFrom(wire: WireToolCall, fallbackId: string): ToolCall {
  const rawArguments = wire.function?.arguments ?? "";
  let args: unknown = rawArguments;
  try {
    args = rawArguments === "" ? {} : JSON.parse(rawArguments);
  } catch {
    // keep the raw string: the caller decides what to do with malformed arguments
  }
  return { id: wire.id ?? fallbackId, name: wire.function?.name ?? "", arguments: args, rawArguments };
}

export function messageToWire(message: ChatMessage): WireMessage {
  const wire: WireMessage = { role: message.role, content: message.content };
  if (message.name !== undefined) wire.name = message.name;
  if (message.toolCallId !== undefined) wire.tool_call_id = message.toolCallId;
  if (message.toolCalls?.length) {
    wire.tool_calls = message.toolCalls.map((c) => ({
      id: c.id,
      type: "function",
      function: {
        name: c.name,
        arguments:
          c.rawArguments || (typeof c.arguments === "string" ? c.arguments : JSON.stringify(c.arguments ?? {})),
      },
    }));
  }
  return wire;
}

function toolToWire(tool: Tool): unknown {
  if ("function" in tool) return tool;
  return {
    type: "function",
    function: { name: tool.name, description: tool.description, parameters: tool.parameters },
  };
}

function toolChoiceToWire(choice: ToolChoice): unknown {
  return typeof choice === "string" ? choice : { type: "function", function: { name: choice.name } };
}

/** Body of `POST /v1/chat/completions`. */
export function chatBody(
  model: string,
  messages: ChatMessage[],
  opts: ChatOptions,
  stream: boolean,
): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model,
    messages: messages.map(messageToWire),
    ...samplingFields(opts),
    stream,
  };
  if (stream) body["stream_options"] = { include_usage: true };
  if (opts.tools?.length) body["tools"] = opts.tools.map(toolToWire);
  if (opts.toolChoice !== undefined) body["tool_choice"] = toolChoiceToWire(opts.toolChoice);
  const rf = opts.responseFormat;
  if (rf?.type === "json_schema") {
    body["response_format"] = {
      type: "json_schema",
      json_schema: { name: rf.name ?? "output", schema: rf.schema, strict: rf.strict ?? true },
    };
  } else if (rf) {
    body["response_format"] = rf;
  }
  return body;
}
