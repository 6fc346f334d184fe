/**
 * The Responses API's shapes of a generation: the `response` object (output items: an assistant `message` with
 * `output_text`, or a `function_call`), and when streamed its typed events, each with a `sequence_number` and
 * named by an SSE `event:` line: `response.created`, `response.in_progress`, `response.output_item.added`,
 * `response.content_part.added`, `response.output_text.delta`... `response.output_item.done`, then
 * `response.completed` (or `response.incomplete` when `max_output_tokens` cut it; `error` if it failed).
 */
import type { ChatMessage } from "../../inference/chat-template.js";
import type { GenerationOutcome } from "../../inference/inference-service.js";
import { toLlmosError } from "../errors.js";
import type { FinishedChoice, WireFormat } from "../generation-response.js";
import { toolCallId } from "../openai/tools.js";
import { responseItemId } from "./translate.js";

/** The request's fields a response object echoes back. */
export interface ResponseEcho {
  instructions: string | null;
  max_output_tokens: number | null;
  temperature: number | null;
  top_p: number | null;
  tools: unknown[];
  tool_choice: unknown;
  text: { format: unknown };
  previous_response_id: string | null;
  store: boolean;
  metadata: Record<string, string>;
  user: string | null;
  parallel_tool_calls: boolean;
  truncation: "disabled" | "auto";
}

export interface ResponsesWireOptions {
  id: string;
  model: string;
  echo: ResponseEcho;
  /** Called with the finished response object and the output as chat messages (to store it). */
  completed(response: Record<string, unknown>, output: ChatMessage[]): Promise<void>;
}

type OutputItem = Record<string, unknown>;

export function responsesWire(o: ResponsesWireOptions): WireFormat {
  const createdAt = Math.floor(Date.now() / 1000);
  const messageId = responseItemId("msg");
  let sequence = 0;
  let messageOpen = false;
  let streamedText = "";
  let items: OutputItem[] = [];
  let outputMessages: ChatMessage[] = [];
  let outcome: GenerationOutcome | undefined;

  const event = (type: string, fields: Record<string, unknown>) => ({ type, sequence_number: sequence++, ...fields });
  const response = (status: string, output: OutputItem[], done?: GenerationOutcome) => ({
    id: o.id,
    object: "response",
    created_at: createdAt,
    status,
    error: null,
    incomplete_details: status === "incomplete" ? { reason: "max_output_tokens" } : null,
    model: o.model,
    output,
    ...o.echo,
    usage: done ? usage(done) : null,
  });
  const messageItem = (text: string, status: string) => ({
    type: "message",
    id: messageId,
    status,
    role: "assistant",
    content: status === "in_progress" ? [] : [textPart(text)],
  });
  const textPart = (text: string) => ({ type: "output_text", text, annotations: [], logprobs: [] });
  const where = { item_id: messageId, output_index: 0, content_index: 0 };

  /** The output items of a finished choice, remembered for the final response. */
  const settle = (c: FinishedChoice, text: string): OutputItem[] => {
    outcome = c.outcome;
    if (c.toolCall) {
      const callId = toolCallId();
      const fn = { name: c.toolCall.name, arguments: JSON.stringify(c.toolCall.arguments) };
      items = [{ type: "function_call", id: responseItemId("fc"), call_id: callId, ...fn, status: "completed" }];
      outputMessages = [
        { role: "assistant", content: "", tool_calls: [{ id: callId, type: "function", function: fn }] },
      ];
    } else {
      items = text ? [messageItem(text, "completed")] : [];
      outputMessages = text ? [{ role: "assistant", content: text }] : [];
    }
    return items;
  };
  const finish = async (done: GenerationOutcome) => {
    const status =
      done.finishReason === "length" ? "incomplete" : done.finishReason === "cancelled" ? "cancelled" : "completed";
    const body = response(status, items, done);
    // A cancelled response (its client went away) is not kept: nobody asked for it to the end.
    if (status !== "cancelled") await o.completed(body, outputMessages);
    return body;
  };

  return {
    contentType: "text/event-stream",
    errorStyle: "openai",
    eventOf: (frame) => (frame as { type?: string }).type,
    errorFrame(error) {
      const e = toLlmosError(error);
      return event("error", { code: e.code, message: e.message, param: (e.details?.param as string) ?? null });
    },
    opening: () => [
      event("response.created", { response: response("in_progress", []) }),
      event("response.in_progress", { response: response("in_progress", []) }),
    ],
    text(_index, text) {
      if (!text) return [];
      const frames: unknown[] = [];
      if (!messageOpen) {
        messageOpen = true;
        frames.push(event("response.output_item.added", { output_index: 0, item: messageItem("", "in_progress") }));
        frames.push(event("response.content_part.added", { ...where, part: textPart("") }));
      }
      streamedText += text;
      frames.push(event("response.output_text.delta", { ...where, delta: text, logprobs: [] }));
      return frames;
    },
    choiceEnd(c, held) {
      const frames: unknown[] = [];
      if (held) frames.push(...this.text(c.index, held, undefined));
      const [item] = settle(c, streamedText);
      if (item?.type === "function_call") {
        const at = { item_id: item.id, output_index: 0 };
        frames.push(
          event("response.output_item.added", {
            output_index: 0,
            item: { ...item, arguments: "", status: "in_progress" },
          }),
          event("response.function_call_arguments.delta", { ...at, delta: item.arguments }),
          event("response.function_call_arguments.done", { ...at, name: item.name, arguments: item.arguments }),
          event("response.output_item.done", { output_index: 0, item }),
        );
      } else if (messageOpen) {
        frames.push(
          event("response.output_text.done", { ...where, text: streamedText, logprobs: [] }),
          event("response.content_part.done", { ...where, part: textPart(streamedText) }),
          event("response.output_item.done", { output_index: 0, item: messageItem(streamedText, "completed") }),
        );
      }
      return frames;
    },
    async closing() {
      const body = await finish(outcome!);
      return [event(body.status === "incomplete" ? "response.incomplete" : "response.completed", { response: body })];
    },
    async body([c]) {
      if (!c) throw new Error("a response has one choice");
      settle(c, c.text);
      return finish(c.outcome);
    },
  };
}

function usage(done: GenerationOutcome) {
  return {
    input_tokens: done.promptTokens,
    input_tokens_details: { cached_tokens: done.cachedPromptTokens ?? 0 },
    output_tokens: done.completionTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: done.promptTokens + done.completionTokens,
  };
}
