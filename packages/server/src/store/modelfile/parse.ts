import { LlmosError } from "../../errors.js";
import type { DefinitionMessage, ParameterValue } from "../definition.js";
import { setParameter } from "./parameters.js";

/** A parsed Modelfile. FROM and ADAPTER keep their text (a model name, a path or a digest) for the caller to resolve. */
export interface ParsedModelfile {
  from?: string;
  adapters: string[];
  parameters: Record<string, ParameterValue>;
  system?: string;
  template?: string;
  messages: DefinitionMessage[];
  license?: string;
}

/** Roles a MESSAGE line may use. */
export const MESSAGE_ROLES = ["system", "user", "assistant", "tool"] as const;

const INSTRUCTIONS = ["from", "adapter", "parameter", "system", "template", "message", "license"] as const;

/** Most instructions in one Modelfile (a few-shot conversation of MESSAGE lines fits many times over). */
export const MAX_MODELFILE_INSTRUCTIONS = 4096;

function fail(line: number, message: string): never {
  throw new LlmosError("invalid_request", `Modelfile line ${line}: ${message}`, { line });
}

/**
 * Reads one argument starting at `pos` (after white space): a `"""triple-quoted"""` value (may span lines), a
 * `"double-quoted"` value with backslash escapes, or the rest of the line. Returns the value and the position after it.
 */
function readValue(text: string, pos: number, line: { n: number }): { value: string; end: number } {
  if (text.startsWith('"""', pos)) {
    const close = text.indexOf('"""', pos + 3);
    if (close === -1) fail(line.n, 'unterminated """ (a triple-quoted value must end with """)');
    const value = text.slice(pos + 3, close);
    line.n += value.split("\n").length - 1;
    return { value, end: close + 3 };
  }
  if (text[pos] === '"') {
    let value = "";
    let i = pos + 1;
    for (; i < text.length && text[i] !== '"'; i++) {
      const c = text[i]!;
      if (c === "\n") fail(line.n, 'unterminated " (use """ for multi-line values)');
      if (c === "\\") {
        const next = text[++i];
        const escapes: Record<string, string> = { n: "\n", r: "\r", t: "\t", '"': '"', "\\": "\\" };
        value += next !== undefined && next in escapes ? escapes[next]! : `\\${next ?? ""}`;
      } else {
        value += c;
      }
    }
    if (i >= text.length) fail(line.n, 'unterminated "');
    return { value, end: i + 1 };
  }
  let end = text.indexOf("\n", pos);
  if (end === -1) end = text.length;
  return { value: text.slice(pos, end).replace(/\r$/, "").trim(), end };
}

/**
 * Parses Ollama's Modelfile syntax: FROM, PARAMETER key value (repeatable; `stop` accumulates), SYSTEM, TEMPLATE,
 * ADAPTER, MESSAGE role content, LICENSE (several are joined by a blank line); instructions case-insensitive;
 * `#` comment lines; `"""multi-line"""` and `"quoted"` values.
 * @throws LlmosError `invalid_request` with the line number.
 */
export function parseModelfile(text: string): ParsedModelfile {
  const out: ParsedModelfile = { adapters: [], parameters: {}, messages: [] };
  const licenses: string[] = [];
  const line = { n: 1 };
  let pos = 0;
  let instructions = 0;
  while (pos < text.length) {
    // Skip blank space, counting lines.
    const c = text[pos]!;
    if (c === "\n") {
      line.n++;
      pos++;
      continue;
    }
    if (/\s/.test(c)) {
      pos++;
      continue;
    }
    if (c === "#") {
      const nl = text.indexOf("\n", pos);
      pos = nl === -1 ? text.length : nl;
      continue;
    }
    const wordMatch = /^[A-Za-z_]+/.exec(text.slice(pos, pos + 32));
    const word = (wordMatch?.[0] ?? text.slice(pos).split(/\s/)[0] ?? "").toLowerCase();
    if (!(INSTRUCTIONS as readonly string[]).includes(word)) {
      fail(
        line.n,
        `unknown instruction "${text.slice(pos).split(/\s/)[0]}"; expected one of ${INSTRUCTIONS.map((i) => i.toUpperCase()).join(", ")}`,
      );
    }
    const startLine = line.n;
    if (++instructions > MAX_MODELFILE_INSTRUCTIONS)
      fail(startLine, `more than ${MAX_MODELFILE_INSTRUCTIONS} instructions in one Modelfile`);
    pos += word.length;
    const after = text[pos];
    if (after !== undefined && after !== " " && after !== "\t" && after !== "\n" && after !== "\r") {
      fail(line.n, `unknown instruction "${text.slice(pos - word.length).split(/\s/)[0]}"`);
    }
    pos = skipInline(text, pos);
    const needs = (what: string): void => {
      if (pos >= text.length || text[pos] === "\n" || text[pos] === "\r")
        fail(startLine, `${word.toUpperCase()} needs ${what}`);
    };
    switch (word) {
      case "from":
      case "adapter":
      case "system":
      case "template":
      case "license": {
        needs(
          word === "from"
            ? "a model name, a GGUF file path or a sha256 digest"
            : word === "adapter"
              ? "a GGUF adapter path or digest"
              : "a value",
        );
        const { value, end } = readValue(text, pos, line);
        pos = end;
        if (word === "from") {
          if (out.from !== undefined) fail(startLine, "FROM given twice");
          out.from = value;
        } else if (word === "adapter") out.adapters.push(value);
        else if (word === "license") licenses.push(value);
        else out[word] = value;
        break;
      }
      case "parameter": {
        needs("a name and a value");
        const key = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(pos, pos + 64))?.[0];
        if (!key) fail(startLine, "PARAMETER needs a name and a value");
        pos = skipInline(text, pos + key.length);
        needs(`a value for ${key}`);
        const { value, end } = readValue(text, pos, line);
        pos = end;
        setParameter(out.parameters, key.toLowerCase(), value, `Modelfile line ${startLine}: `);
        break;
      }
      case "message": {
        needs("a role and content");
        const role = /^[A-Za-z]+/.exec(text.slice(pos, pos + 32))?.[0]?.toLowerCase();
        if (!role || !(MESSAGE_ROLES as readonly string[]).includes(role)) {
          fail(startLine, `MESSAGE role must be one of ${MESSAGE_ROLES.join(", ")}`);
        }
        pos = skipInline(text, pos + role.length);
        needs("content");
        const { value, end } = readValue(text, pos, line);
        pos = end;
        out.messages.push({ role, content: value });
        break;
      }
    }
    // Nothing but white space may follow a quoted value on its line.
    const rest = skipInline(text, pos);
    if (rest < text.length && text[rest] !== "\n" && text[rest] !== "\r") {
      fail(line.n, `unexpected text after the value: ${JSON.stringify(text.slice(rest, rest + 20))}`);
    }
    pos = rest;
  }
  if (licenses.length > 0) out.license = licenses.join("\n\n");
  return out;
}

function skipInline(text: string, pos: number): number {
  while (pos < text.length && (text[pos] === " " || text[pos] === "\t")) pos++;
  return pos;
}
