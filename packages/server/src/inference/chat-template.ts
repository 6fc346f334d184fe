import { jsonDepth, MAX_PARSED_JSON_DEPTH } from "../lib/json-depth.js";
import type { JinjaSandbox } from "./jinja-sandbox.js";
import { DEFAULT_GO_TEMPLATE_LIMITS, parseGoTemplate, renderNodes, type GoTemplateLimits } from "./go-template.js";

export interface ChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  name?: string;
  tool_calls?: Array<{ id: string; type: "function"; function: { name: string; arguments: string } }>;
  tool_call_id?: string;
}

export interface ChatTool {
  type: "function";
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

export interface RenderedChat {
  prompt: string;
  /** Stop strings the template implies (the fallback format stops at the next turn). */
  stop: string[];
  /** Which template rendered it: `gguf` (the model's own), `definition` (TEMPLATE), or `fallback`. */
  source: "gguf" | "definition" | "fallback";
}

/**
 * The documented fallback for models without a chat template:
 *
 *     {system}\n\n            (only when there is a system message)
 *     User: {content}\n
 *     Assistant: {content}\n
 *     Tool: {content}\n
 *     Assistant:
 *
 * Generation stops at "\nUser:" so the model does not write the next turn itself.
 */
export function renderFallback(messages: ChatMessage[]): RenderedChat {
  let prompt = "";
  const system = messages.filter((m) => m.role === "system").map((m) => m.content);
  if (system.length) prompt += system.join("\n") + "\n\n";
  for (const m of messages) {
    if (m.role === "system") continue;
    const label = m.role === "user" ? "User" : m.role === "assistant" ? "Assistant" : "Tool";
    let content = m.content;
    if (m.tool_calls?.length)
      content +=
        (content ? "\n" : "") +
        m.tool_calls
          .map((c) => JSON.stringify({ name: c.function.name, arguments: safeJson(c.function.arguments) }))
          .join("\n");
    prompt += `${label}: ${content}\n`;
  }
  prompt += "Assistant:";
  return { prompt, stop: ["\nUser:"], source: "fallback" };
}

/**
 * Renders messages with a Jinja chat template (the GGUF's `tokenizer.chat_template`) in the sandbox: step, output,
 * heap and time limits (see JinjaSandbox).
 * @throws LlmosError `invalid_request` when the template fails or exceeds a limit.
 */
export function renderJinja(
  sandbox: JinjaSandbox,
  template: string,
  messages: ChatMessage[],
  ctx: { bosText: string; eosText: string; tools?: ChatTool[] },
): Promise<string> {
  return sandbox.render(template, {
    messages: messages.map((m) => ({
      ...m,
      tool_calls: m.tool_calls?.map((c) => ({
        ...c,
        function: { ...c.function, arguments: safeJson(c.function.arguments) },
      })),
    })),
    bos_token: ctx.bosText,
    eos_token: ctx.eosText,
    add_generation_prompt: true,
    ...(ctx.tools?.length ? { tools: ctx.tools } : {}),
  });
}

/**
 * Ollama-style Go templates (a definition's TEMPLATE, or Ollama generate's `template`): the subset `{{ .System }}`,
 * `{{ .Prompt }}`, `{{ .Response }}`, `{{ if .X }}...{{ else }}...{{ end }}` and trim markers (see go-template.ts);
 * earlier turns are rendered one after another with the same template, the last one up to `{{ .Response }}`.
 * Time is linear in template and messages, bounded by `limits` (a 400 naming `param` beyond them).
 */
export function renderGoTemplate(
  template: string,
  messages: ChatMessage[],
  param = "template",
  limits: GoTemplateLimits = DEFAULT_GO_TEMPLATE_LIMITS,
): string {
  const nodes = parseGoTemplate(template, param);
  const system = messages
    .filter((m) => m.role === "system")
    .map((m) => m.content)
    .join("\n");
  const turns: Array<{ prompt: string; response?: string }> = [];
  for (const m of messages) {
    if (m.role === "user" || m.role === "tool") turns.push({ prompt: m.content });
    else if (m.role === "assistant") {
      const last = turns[turns.length - 1];
      if (last && last.response === undefined) last.response = m.content;
      else turns.push({ prompt: "", response: m.content });
    }
  }
  if (turns.length === 0) turns.push({ prompt: "" });
  const SENTINEL = "\u0000RESPONSE\u0000";
  const budget = { steps: 0, chars: 0 };
  let prompt = "";
  turns.forEach((turn, i) => {
    const vars: Record<string, string> = { System: i === 0 ? system : "", Prompt: turn.prompt, Response: SENTINEL };
    const isSet = (name: string) => (name === "Response" ? Boolean(turn.response) : Boolean(vars[name]));
    const out = renderNodes(nodes, vars, isSet, budget, limits, param);
    const cut = out.indexOf(SENTINEL);
    if (turn.response === undefined) prompt += cut === -1 ? out : out.slice(0, cut);
    else prompt += cut === -1 ? out + turn.response : out.replace(SENTINEL, () => turn.response!);
  });
  return prompt;
}

/**
 * True when every action of a Go template is in the subset {@link renderGoTemplate} renders (`.System`, `.Prompt`,
 * `.Response`, `if .X`, `end`). Templates of Ollama's library that range over `.Messages` or use `$`-variables,
 * `else`, functions or tools are not.
 */
export function isSimpleGoTemplate(template: string): boolean {
  for (const m of template.matchAll(/\{\{-?\s*([\s\S]*?)\s*-?\}\}/g)) {
    if (!/^(\.(System|Prompt|Response)|if\s+\.\w+|end)$/.test(m[1]!)) return false;
  }
  return true;
}

/** Tool-call arguments as a value for templates, or the text itself when it is not JSON or nested too deep to walk. */
function safeJson(text: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return text;
  }
  return jsonDepth(value, MAX_PARSED_JSON_DEPTH) > MAX_PARSED_JSON_DEPTH ? text : value;
}
