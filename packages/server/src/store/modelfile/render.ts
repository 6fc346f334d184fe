import type { ModelDefinition } from "../definition.js";

/** Quotes a value so that `parseModelfile` reads it back exactly. */
export function quoteModelfileValue(value: string): string {
  const plain = value.length > 0 && !/[\n\r"]/.test(value) && value.trim() === value && !value.startsWith("#");
  if (plain) return value;
  if (!value.includes('"""') && !value.endsWith('"') && !value.startsWith('"')) return `"""${value}"""`;
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t")}"`;
}

/** What FROM and ADAPTER lines should say when rendering (the store passes blob digests so a render re-creates). */
export interface RenderSources {
  /** FROM value; default `definition.from`. */
  from?: string;
  /** ADAPTER values, in order. */
  adapters?: string[];
}

/**
 * Renders a definition as Modelfile text (Ollama syntax). `parseModelfile(renderModelfile(d))` gives back `d`'s
 * parameters, prompts, messages and license.
 */
export function renderModelfile(definition: ModelDefinition, sources: RenderSources = {}): string {
  const lines: string[] = [];
  const from = sources.from ?? definition.from;
  if (from !== undefined) lines.push(`FROM ${quoteModelfileValue(from)}`);
  for (const adapter of sources.adapters ?? []) lines.push(`ADAPTER ${quoteModelfileValue(adapter)}`);
  if (definition.template !== undefined) lines.push(`TEMPLATE ${quoteModelfileValue(definition.template)}`);
  if (definition.system !== undefined) lines.push(`SYSTEM ${quoteModelfileValue(definition.system)}`);
  for (const [key, value] of Object.entries(definition.parameters)) {
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) lines.push(`PARAMETER ${key} ${quoteModelfileValue(String(v))}`);
  }
  for (const message of definition.messages) {
    lines.push(`MESSAGE ${message.role} ${quoteModelfileValue(message.content)}`);
  }
  if (definition.license !== undefined) lines.push(`LICENSE ${quoteModelfileValue(definition.license)}`);
  return `${lines.join("\n")}\n`;
}
