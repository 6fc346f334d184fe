/**
 * GBNF text for a GrammarSpec. `json` uses llama.cpp's json.gbnf; `json_schema` uses node-llama-cpp's own
 * JSON-schema-to-GBNF converter (`getGbnfGrammarForGbnfJsonSchema`, pure JS, no native code), imported by file
 * path because the package's `exports` map does not expose it. No `Llama` instance is created.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import type { GrammarSpec } from "../engine.js";

/** llama.cpp `grammars/json.gbnf`: any JSON object. */
export const JSON_GBNF = String.raw`root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws

object ::=
  "{" ws (
            string ":" ws value
    ("," ws string ":" ws value)*
  )? "}" ws

array  ::=
  "[" ws (
            value
    ("," ws value)*
  )? "]" ws

string ::=
  "\"" (
    [^"\\\x7F\x00-\x1F] |
    "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
  )* "\"" ws

number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws

# Optional space: by convention, applied in this grammar after literal chars when allowed
ws ::= | " " | "\n" [ \t]{0,20}
`;

type SchemaConverter = (schema: unknown, opts?: { allowNewLines?: boolean; scopePadSpaces?: number }) => string;
let converter: SchemaConverter | undefined;

/**
 * Load node-llama-cpp's converter (once per process). Call before `gbnfFor` handles a `json_schema` spec.
 * Throws if the installed node-llama-cpp does not have it at the known location.
 */
export async function loadJsonSchemaConverter(): Promise<void> {
  if (converter) return;
  const require = createRequire(import.meta.url);
  const entry = require.resolve("node-llama-cpp"); // .../node-llama-cpp/dist/index.js
  const file = join(dirname(entry), "utils", "gbnfJson", "getGbnfGrammarForGbnfJsonSchema.js");
  const mod = (await import(pathToFileURL(file).href)) as { getGbnfGrammarForGbnfJsonSchema?: SchemaConverter };
  if (typeof mod.getGbnfGrammarForGbnfJsonSchema !== "function") {
    throw new Error(`node-llama-cpp JSON schema converter not found in ${file}`);
  }
  converter = mod.getGbnfGrammarForGbnfJsonSchema;
}

// node-llama-cpp appends four newlines plus `[\n]*` to the root rule and stops on them itself; we end the
// grammar at the JSON value instead, so a completed grammar forces end-of-generation.
const NLC_ROOT_SUFFIX = ` "\\n\\n\\n\\n" [\\n]*`;

/** The GBNF text and root rule of a grammar spec. */
export function gbnfFor(spec: GrammarSpec): { grammar: string; root: string } {
  switch (spec.type) {
    case "gbnf":
      return { grammar: spec.grammar, root: spec.root ?? "root" };
    case "json":
      return { grammar: JSON_GBNF, root: "root" };
    case "json_schema": {
      if (!converter) throw new Error("JSON schema converter not loaded (call loadJsonSchemaConverter first)");
      let grammar = converter(spec.schema, { allowNewLines: false });
      const lines = grammar.split("\n");
      if (lines[0]?.endsWith(NLC_ROOT_SUFFIX)) {
        lines[0] = lines[0].slice(0, -NLC_ROOT_SUFFIX.length);
        grammar = lines.join("\n");
      }
      return { grammar, root: "root" };
    }
  }
}
