import { randomBytes } from "node:crypto";
import type { GrammarSpec } from "../../engine/engine.js";
import { LlmosError } from "../../errors.js";
import { jsonDepth, MAX_PARSED_JSON_DEPTH } from "../../lib/json-depth.js";
import type { ChatMessage, ChatTool } from "../../inference/chat-template.js";
import { checkJsonSchema, checkToolSchema } from "./json-schema.js";

/**
 * Function calling, shared by the OpenAI and Ollama chat routes.
 *
 * - `tool_choice: "none"` (or no tools): tools are neither shown to the model nor parsed from its output.
 * - `"auto"` (default; Ollama always): the output is free. When its first non-blank character is `{` it is held
 *   back and, at the end, parsed as a tool call `{"name": ..., "arguments": {...}}`; text that is not a valid
 *   call of a declared tool is returned as content.
 * - `"required"` or a named function: a grammar forces exactly one call `{"name": <tool>, "arguments": <that
 *   tool's parameters schema>}`, so the arguments always parse and match the schema. Only then must the schema be
 *   one a grammar can enforce (`checkJsonSchema`); tools that are only offered may use any keyword.
 * - A forced call cut off by `max_tokens` is incomplete JSON: it is dropped, and the choice ends with
 *   `finish_reason: "length"` and no content (never partial JSON as text).
 *
 * When the model's chat template uses a `tools` variable it renders the tools itself; otherwise the tools are
 * described in a system message (see `TOOL_INSTRUCTIONS`).
 */
export interface ToolPlan {
  tools: ChatTool[];
  /** "forced": the grammar guarantees a call; "auto": the output is parsed for one. */
  mode: "auto" | "forced";
  /** The constraining grammar in forced mode. */
  grammar?: GrammarSpec;
}

/** A parsed tool call. */
export interface ParsedToolCall {
  name: string;
  arguments: Record<string, unknown>;
}

export type ToolChoice = "none" | "auto" | "required" | { type: "function"; function: { name: string } } | undefined;

/** Validates tools and decides how they are used. Returns undefined when tools play no part. */
export function planTools(tools: ChatTool[] | undefined, choice: ToolChoice): ToolPlan | undefined {
  if (!tools || tools.length === 0) {
    if (choice !== undefined && choice !== "none" && choice !== "auto")
      throw new LlmosError("invalid_request", `tool_choice needs "tools"`, { param: "tool_choice" });
    return undefined;
  }
  if (choice === "none") return undefined;
  const seen = new Set<string>();
  const checked: ChatTool[] = tools.map((t, i) => {
    const name = t.function?.name;
    if (typeof name !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
      throw new LlmosError("invalid_request", `tools[${i}].function.name must be 1-64 letters, digits, "_" or "-"`, {
        param: `tools[${i}].function.name`,
      });
    }
    if (seen.has(name))
      throw new LlmosError("invalid_request", `tools[${i}]: the function name "${name}" is declared twice`, {
        param: `tools[${i}].function.name`,
      });
    seen.add(name);
    // Only a forced call is constrained by a grammar; otherwise the schema is shown to the model and any
    // keyword is fine (the output is parsed, not constrained).
    const forced = choice === "required" || (typeof choice === "object" && choice.function.name === name);
    const raw = t.function.parameters ?? { type: "object", properties: {} };
    const param = `tools[${i}].function.parameters`;
    const parameters = forced ? checkJsonSchema(raw, param) : checkToolSchema(raw, param);
    if (parameters.type !== "object")
      throw new LlmosError(
        "invalid_request",
        `tools[${i}].function.parameters must be an object schema ("type": "object")`,
        { param: `tools[${i}].function.parameters` },
      );
    return {
      type: "function",
      function: { name, ...(t.function.description ? { description: t.function.description } : {}), parameters },
    };
  });
  if (choice === undefined || choice === "auto") return { tools: checked, mode: "auto" };
  const forced = choice === "required" ? checked : checked.filter((t) => t.function.name === choice.function.name);
  if (forced.length === 0) {
    const name = typeof choice === "object" ? choice.function.name : "";
    throw new LlmosError("invalid_request", `tool_choice names the function "${name}", which is not in "tools"`, {
      param: "tool_choice",
    });
  }
  return { tools: checked, mode: "forced", grammar: { type: "json_schema", schema: callSchema(forced) } };
}

/** The JSON schema of one call of any of `tools`. */
function callSchema(tools: ChatTool[]): Record<string, unknown> {
  const one = (t: ChatTool) => ({
    type: "object",
    properties: { name: { const: t.function.name }, arguments: t.function.parameters },
  });
  return tools.length === 1 ? one(tools[0]!) : { oneOf: tools.map(one) };
}

/** The system-message text that describes tools to a model whose template cannot render them. */
export const TOOL_INSTRUCTIONS =
  'You can call functions. To call one, reply with only a JSON object {"name": <function name>, "arguments": <an object of its parameters>} and nothing else. Available functions:';

/** True when a Jinja chat template renders a `tools` variable. */
export function templateRendersTools(template: string | undefined): boolean {
  return typeof template === "string" && /\btools\b/.test(template);
}

/** Adds the tool description to the system message when the template cannot render tools itself. */
export function withToolInstructions(messages: ChatMessage[], tools: ChatTool[]): ChatMessage[] {
  const listing = tools
    .map((t) =>
      JSON.stringify({
        name: t.function.name,
        ...(t.function.description ? { description: t.function.description } : {}),
        parameters: t.function.parameters,
      }),
    )
    .join("\n");
  const text = `${TOOL_INSTRUCTIONS}\n${listing}`;
  const first = messages[0];
  if (first?.role === "system") return [{ ...first, content: `${first.content}\n\n${text}` }, ...messages.slice(1)];
  return [{ role: "system", content: text }, ...messages];
}

/** Parses model output as a call of one of `tools`; null when it is not one. */
export function parseToolCall(text: string, tools: ChatTool[]): ParsedToolCall | null {
  const trimmed = text.trim();
  if (!trimmed.startsWith("{")) return null;
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  // Arguments are serialised again for the response: text nested too deep for that is not a call.
  if (jsonDepth(value, MAX_PARSED_JSON_DEPTH) > MAX_PARSED_JSON_DEPTH) return null;
  const v = value as Record<string, unknown>;
  const args = v.arguments ?? v.parameters ?? {};
  if (typeof v.name !== "string" || !tools.some((t) => t.function.name === v.name)) return null;
  if (typeof args !== "object" || args === null || Array.isArray(args)) return null;
  return { name: v.name, arguments: args as Record<string, unknown> };
}

/** `call_…` ids like OpenAI's. */
export function toolCallId(): string {
  return `call_${randomBytes(12).toString("base64url")}`;
}

/**
 * Splits streamed output into what can be shown at once and what must be held back until the end: in auto mode
 * text is shown unless it starts (after blanks) with `{`; in forced mode everything is held back.
 */
export class ToolStreamGate {
  private state: "undecided" | "text" | "held";
  private pending = "";

  constructor(mode: ToolPlan["mode"]) {
    this.state = mode === "forced" ? "held" : "undecided";
  }

  /** Text to emit now ("" when held back). */
  push(text: string): string {
    if (this.state === "text") return text;
    this.pending += text;
    if (this.state === "held") return "";
    const start = this.pending.trimStart();
    if (start.length === 0) return "";
    if (start.startsWith("{")) {
      this.state = "held";
      return "";
    }
    this.state = "text";
    const out = this.pending;
    this.pending = "";
    return out;
  }

  /** True while output is held back (undecided or a candidate call). */
  get holding(): boolean {
    return this.state !== "text";
  }

  /** Whatever was held back (the candidate tool call, or blanks). */
  get held(): string {
    return this.pending;
  }
}
