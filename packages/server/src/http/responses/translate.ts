/**
 * The Responses API in the terms of the chat pipeline: `instructions` + `input` (text or items) become chat
 * messages, function tools and `tool_choice` become the chat tool plan, `text.format` becomes a grammar.
 */
import { randomBytes } from "node:crypto";
import type { GrammarSpec } from "../../engine/engine.js";
import { LlmosError } from "../../errors.js";
import type { ChatMessage, ChatTool } from "../../inference/chat-template.js";
import { checkJsonSchema } from "../openai/json-schema.js";
import type { ToolChoice } from "../openai/tools.js";
import type { CreateResponseBody, ResponseInputItem, ResponseTool } from "./schemas.js";
import { UNSUPPORTED_RESPONSE_FIELDS } from "./schemas.js";

/** `resp_…`, `msg_…`, `fc_…` ids like OpenAI's. */
export function responseItemId(prefix: "resp" | "msg" | "fc"): string {
  return `${prefix}_${randomBytes(16).toString("hex")}`;
}

export function rejectUnsupportedResponseFields(body: Record<string, unknown>): void {
  for (const field of UNSUPPORTED_RESPONSE_FIELDS) {
    const value = body[field];
    if (value !== undefined && value !== null && value !== false)
      throw new LlmosError("invalid_request", `"${field}" is not supported by llmos' Responses API`, { param: field });
  }
}

function partsText(content: string | Array<{ type: string; text?: string | undefined }>, param: string): string {
  if (typeof content === "string") return content;
  return content
    .map((part, i) => {
      if (!["input_text", "output_text", "text"].includes(part.type) || typeof part.text !== "string")
        throw new LlmosError(
          "invalid_request",
          `${param}[${i}]: content part type "${part.type}" is not supported (text only)`,
          { param: `${param}[${i}]` },
        );
      return part.text;
    })
    .join("");
}

/** The input (text or items) as chat messages; function calls join the assistant message before them. */
export function inputMessages(input: CreateResponseBody["input"]): ChatMessage[] {
  if (typeof input === "string") return [{ role: "user", content: input }];
  const out: ChatMessage[] = [];
  input.forEach((raw, i) => {
    const item = raw as ResponseInputItem & Record<string, unknown>;
    const param = `input[${i}]`;
    if (item.type === "function_call") {
      const call = {
        id: item.call_id as string,
        type: "function" as const,
        function: { name: item.name as string, arguments: item.arguments as string },
      };
      const last = out[out.length - 1];
      if (last?.role === "assistant" && !last.content && last.tool_calls) last.tool_calls.push(call);
      else out.push({ role: "assistant", content: "", tool_calls: [call] });
    } else if (item.type === "function_call_output") {
      const output = item.output as Parameters<typeof partsText>[0];
      out.push({ role: "tool", tool_call_id: item.call_id as string, content: partsText(output, `${param}.output`) });
    } else if (item.type === undefined || item.type === "message") {
      if (typeof item.role !== "string")
        throw new LlmosError("invalid_request", `${param}: a message needs a "role"`, { param });
      const role = item.role === "developer" ? "system" : (item.role as ChatMessage["role"]);
      out.push({ role, content: partsText(item.content as Parameters<typeof partsText>[0], `${param}.content`) });
    } else {
      throw new LlmosError("invalid_request", `${param}: item type "${item.type}" is not supported by llmos`, {
        param,
      });
    }
  });
  return out;
}

/** Function tools in the chat shape the tool plan takes. */
export function chatTools(tools: ResponseTool[] | undefined): ChatTool[] | undefined {
  if (!tools || tools.length === 0) return undefined;
  return tools.map((t, i) => {
    if (t.type !== "function" || !t.name)
      throw new LlmosError(
        "invalid_request",
        `tools[${i}]: only function tools are supported (got "${t.type}")${t.type === "function" ? ' and they need a "name"' : ""}`,
        { param: `tools[${i}]` },
      );
    return {
      type: "function",
      function: {
        name: t.name,
        ...(t.description ? { description: t.description } : {}),
        ...(t.parameters ? { parameters: t.parameters } : {}),
      },
    };
  });
}

export function chatToolChoice(choice: CreateResponseBody["tool_choice"]): ToolChoice {
  if (choice === undefined || typeof choice === "string") return choice;
  return { type: "function", function: { name: choice.name } };
}

/** `text.format` -> grammar (a json_schema is checked: what the grammar cannot enforce is a 400). */
export function grammarFromTextFormat(text: CreateResponseBody["text"]): GrammarSpec | undefined {
  const format = text?.format;
  if (!format || format.type === "text") return undefined;
  if (format.type === "json_object") return { type: "json" };
  return { type: "json_schema", schema: checkJsonSchema(format.schema, "text.format.schema") };
}
