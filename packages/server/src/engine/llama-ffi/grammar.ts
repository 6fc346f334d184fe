/**
 * GBNF text for a GrammarSpec. `json` uses llama.cpp's json.gbnf; `json_schema` uses llmos' own converter
 * (`grammar/json-schema-gbnf.ts`, shared with the llama-node engine), whose grammar ends at the JSON value, so a
 * completed grammar forces end-of-generation.
 */
import { jsonSchemaToGbnf } from "../../grammar/json-schema-gbnf.js";
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

/** The GBNF text and root rule of a grammar spec. */
export function gbnfFor(spec: GrammarSpec): { grammar: string; root: string } {
  switch (spec.type) {
    case "gbnf":
      return { grammar: spec.grammar, root: spec.root ?? "root" };
    case "json":
      return { grammar: JSON_GBNF, root: "root" };
    case "json_schema":
      return { grammar: jsonSchemaToGbnf(spec.schema), root: "root" };
  }
}
