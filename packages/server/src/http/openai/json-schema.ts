import { LlmosError } from "../../errors.js";
import { jsonSchemaToGbnf, numericBounds } from "../../grammar/json-schema-gbnf.js";
import { InvalidPatternError, patternToGbnf, UnsupportedPatternError } from "../../grammar/regex-pattern.js";
import { jsonDepth } from "../../lib/json-depth.js";
import { endlessDefinition, leftRecursion, missingRef } from "./schema-refs.js";

/**
 * Checks a JSON Schema that will become a grammar (structured outputs, Ollama `format`, forced tool calls) and
 * returns the form the converter (`grammar/json-schema-gbnf.ts`) takes. What the grammar cannot guarantee is
 * refused with a 400 naming the keyword and where it is, instead of producing output that does not match.
 *
 * Enforced by the grammar: `type` (one or a list), `nullable`, `properties` (every listed property is written, so
 * `required` holds), `additionalProperties`, `minProperties`/`maxProperties` (of maps), `items`, `prefixItems`,
 * `minItems`/`maxItems`, `minLength`/`maxLength`, `pattern` (see grammar/regex-pattern.ts), `format` date, time,
 * date-time, uuid (with a `pattern` beside it, as zod writes them, the pattern is enforced), `minimum`/`maximum`/`exclusiveMinimum`/`exclusiveMaximum` on integers and numbers (bounds at or
 * beyond ±(2^53-1) are no bound), `enum`, `const`, `oneOf`/`anyOf`, `$ref` into `$defs`/`definitions`.
 * Ignored annotations: title, description, default, examples, `$schema`, `$id`, `$comment`, `strict`, ...
 * Bounds (400 naming the keyword): nesting up to 64 levels (enum and const values too); length, item and property
 * counts up to {@link MAX_SCHEMA_REPETITIONS}; every `$ref` defined, no definition that refers back to itself before
 * any output (`a -> b -> a`), and none that always contains itself (its output could never end).
 * Refused: `allOf`, `not`, `if`/`then`/`else`, `multipleOf`, `patternProperties`, `uniqueItems: true`, other
 * formats, and anything else unknown.
 *
 * Where no grammar applies (tools with `tool_choice: "auto"`: the output is parsed, not constrained), use
 * `checkToolSchema`, which checks only the shape.
 */
export function checkJsonSchema(schema: unknown, param: string): Record<string, unknown> {
  const out = normalise(schema, param, 0) as Record<string, unknown>;
  const problem = missingRef(out) ?? leftRecursion(out) ?? endlessDefinition(out);
  if (problem) fail(param, problem);
  try {
    jsonSchemaToGbnf(out);
  } catch (error) {
    fail(param, (error as Error).message);
  }
  return out;
}

/**
 * A schema only shown to the model and used to parse its output (tools with `tool_choice: "auto"`): any JSON
 * Schema keyword is accepted, since no grammar has to enforce it. Returned unchanged.
 */
export function checkToolSchema(schema: unknown, param: string): Record<string, unknown> {
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) fail(param, "a schema must be an object");
  const s = schema as Record<string, unknown>;
  checkShape(s, param, 0);
  return s.type === undefined && s.properties !== undefined ? { ...s, type: "object" } : s;
}

/**
 * A well-formed JSON Schema, as far as its structure goes: `type` names JSON types, schema lists (`allOf`, `anyOf`,
 * `oneOf`, `prefixItems`) are non-empty arrays of schemas, schema maps are objects of schemas, `enum` is a non-empty
 * array, `required` a list of names. Any keyword is fine where no grammar applies; a malformed one is still a 400.
 */
function checkShape(schema: unknown, param: string, depth: number): void {
  if (depth > MAX_DEPTH) fail(param, `nested deeper than ${MAX_DEPTH} levels`);
  if (typeof schema === "boolean") return;
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) fail(param, "a schema must be an object");
  const s = schema as Record<string, unknown>;
  if (s.type !== undefined) {
    const list = Array.isArray(s.type) ? s.type : [s.type];
    if (list.length === 0 || !list.every((t) => typeof t === "string" && TYPES.has(t)))
      fail(param, `"type" must be one of ${[...TYPES].join(", ")} (or a list of them), got ${JSON.stringify(s.type)}`);
  }
  if (s.enum !== undefined && (!Array.isArray(s.enum) || s.enum.length === 0))
    fail(param, `"enum" must be a non-empty array`);
  if (s.required !== undefined && (!Array.isArray(s.required) || !s.required.every((k) => typeof k === "string")))
    fail(param, `"required" must be an array of property names`);
  for (const key of ["properties", "$defs", "definitions", "patternProperties"]) {
    if (s[key] === undefined) continue;
    if (typeof s[key] !== "object" || s[key] === null || Array.isArray(s[key]))
      fail(param, `"${key}" must be an object of schemas`);
    for (const [name, sub] of Object.entries(s[key] as object)) checkShape(sub, `${param}.${key}.${name}`, depth + 1);
  }
  for (const key of ["items", "additionalProperties", "not", "contains", "if", "then", "else"])
    if (s[key] !== undefined) checkShape(s[key], `${param}.${key}`, depth + 1);
  for (const key of ["anyOf", "oneOf", "allOf", "prefixItems"]) {
    if (s[key] === undefined) continue;
    if (!Array.isArray(s[key]) || (s[key] as unknown[]).length === 0)
      fail(param, `"${key}" must be a non-empty array of schemas`);
    (s[key] as unknown[]).forEach((sub, i) => checkShape(sub, `${param}.${key}[${i}]`, depth + 1));
  }
}

const TYPES = new Set(["string", "number", "integer", "boolean", "null", "object", "array"]);
const ANNOTATIONS = new Set([
  "title",
  "description",
  "default",
  "examples",
  "$schema",
  "$id",
  "$comment",
  "strict",
  "deprecated",
  "readOnly",
  "writeOnly",
  "contentEncoding",
  "contentMediaType",
]);
const FORMATS = new Set(["date", "time", "date-time", "uuid"]);
const BOUNDS = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"];
const MAX_DEPTH = 64;
/**
 * Largest length, item or property count a grammar spells out. The converter writes `( x ){n,m}`; llama.cpp expands
 * it into copies of x and refuses a repetition whose count times the rules its group introduces reaches 2000 (a
 * group introduces up to 3: the group, a separator, the item's rule). 500 x 3 stays below; larger bounds are refused
 * here with the keyword named, instead of failing in the runner.
 */
export const MAX_SCHEMA_REPETITIONS = 500;

function fail(param: string, message: string): never {
  throw new LlmosError("invalid_request", `invalid JSON schema at ${param}: ${message}`, { param });
}

function repetitionBound(value: unknown, param: string, key: string): number {
  if (!Number.isInteger(value) || (value as number) < 0) fail(param, `"${key}" must be a non-negative integer`);
  if ((value as number) > MAX_SCHEMA_REPETITIONS)
    fail(
      param,
      `"${key}": ${value} is above ${MAX_SCHEMA_REPETITIONS}, the most a grammar can spell out (leave "${key}" out or lower it; max_tokens bounds the output)`,
    );
  return value as number;
}

/** enum and const values are copied into the grammar as they are: bounded like the schema itself. */
function literal(value: unknown, param: string, key: string): unknown {
  if (jsonDepth(value, MAX_DEPTH) > MAX_DEPTH) fail(param, `"${key}" is nested deeper than ${MAX_DEPTH} levels`);
  return value;
}

function normalise(schema: unknown, param: string, depth: number): unknown {
  if (depth > MAX_DEPTH) fail(param, `nested deeper than ${MAX_DEPTH} levels`);
  if (schema === true) return {};
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) fail(param, "a schema must be an object");
  const input = schema as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    const at = `${param}.${key}`;
    switch (key) {
      case "type": {
        const list = Array.isArray(value) ? value : [value];
        if (list.length === 0 || !list.every((t) => typeof t === "string" && TYPES.has(t))) {
          fail(
            param,
            `"type" must be one of ${[...TYPES].join(", ")} (or a list of them), got ${JSON.stringify(value)}`,
          );
        }
        out.type = value;
        break;
      }
      case "properties":
      case "$defs":
      case "definitions": {
        if (typeof value !== "object" || value === null || Array.isArray(value))
          fail(param, `"${key}" must be an object of schemas`);
        const map: Record<string, unknown> = {};
        for (const [name, sub] of Object.entries(value)) map[name] = normalise(sub, `${at}.${name}`, depth + 1);
        out[key === "definitions" ? "$defs" : key] = map;
        break;
      }
      case "required":
        if (!Array.isArray(value) || !value.every((k) => typeof k === "string"))
          fail(param, `"required" must be an array of property names`);
        out.required = value;
        break;
      case "additionalProperties":
        if (value === false || value === true) out.additionalProperties = value;
        else out.additionalProperties = normalise(value, at, depth + 1);
        break;
      case "items":
        if (value === false) out.items = false;
        else out.items = normalise(value, at, depth + 1);
        break;
      case "prefixItems":
      case "oneOf":
      case "anyOf": {
        if (!Array.isArray(value) || value.length === 0) fail(param, `"${key}" must be a non-empty array of schemas`);
        out[key === "anyOf" ? "oneOf" : key] = value.map((sub, i) => normalise(sub, `${at}[${i}]`, depth + 1));
        break;
      }
      case "enum":
        if (!Array.isArray(value) || value.length === 0) fail(param, `"enum" must be a non-empty array`);
        out.enum = literal(value, param, key);
        break;
      case "const":
        out.const = literal(value, param, key);
        break;
      case "nullable":
        if (typeof value !== "boolean") fail(param, `"nullable" must be true or false`);
        if (value) out.nullable = true;
        break;
      case "$ref":
        if (typeof value !== "string" || !/^#\/(\$defs|definitions)\/[^/]+$/.test(value))
          fail(param, `"$ref" must point into "#/$defs/" (remote and nested references are not supported)`);
        out.$ref = value.replace("#/definitions/", "#/$defs/");
        break;
      case "minLength":
      case "maxLength":
      case "minItems":
      case "maxItems":
      case "minProperties":
      case "maxProperties":
        out[key] = repetitionBound(value, param, key);
        break;
      case "minimum":
      case "maximum":
      case "exclusiveMinimum":
      case "exclusiveMaximum":
        if (typeof value === "boolean" && key.startsWith("exclusive")) out[key] = value;
        else if (typeof value === "number" && Number.isFinite(value)) out[key] = value;
        else fail(param, `"${key}" must be a number`);
        break;
      case "pattern":
        if (typeof value !== "string") fail(param, `"pattern" must be a string`);
        try {
          patternToGbnf(value);
        } catch (error) {
          if (error instanceof UnsupportedPatternError || error instanceof InvalidPatternError)
            fail(param, `"pattern": ${JSON.stringify(value)} is not supported: ${error.message}`);
          throw error;
        }
        out.pattern = value;
        break;
      case "format":
        if (typeof value !== "string") fail(param, `"format" must be a string`);
        // Other formats (email, uri, ...) cannot be enforced; a plain string is all the grammar could promise.
        if (!FORMATS.has(value))
          fail(param, `"format": "${value}" is not supported (supported: ${[...FORMATS].join(", ")})`);
        out.format = value;
        break;
      case "uniqueItems":
        if (value !== false) fail(param, `"uniqueItems" is not supported by llmos' grammar-constrained output`);
        break;
      default:
        if (ANNOTATIONS.has(key) || key.startsWith("x-")) continue;
        fail(
          param,
          `"${key}" is not supported by llmos' grammar-constrained output (the output could not be guaranteed to match it)`,
        );
    }
  }
  checkCombination(out, input, param);
  return out;
}

/** Keywords that are fine alone but contradict each other or the type. */
function checkCombination(out: Record<string, unknown>, input: Record<string, unknown>, param: string): void {
  const below = (a: string, b: string) =>
    out[a] !== undefined && out[b] !== undefined && (out[b] as number) < (out[a] as number);
  if (below("minLength", "maxLength")) fail(param, `"maxLength" is below "minLength"`);
  if (below("minItems", "maxItems")) fail(param, `"maxItems" is below "minItems"`);
  if (below("minProperties", "maxProperties")) fail(param, `"maxProperties" is below "minProperties"`);
  if (input.properties !== undefined && out.type === undefined) out.type = "object";
  const types = out.type === undefined ? [] : Array.isArray(out.type) ? (out.type as string[]) : [out.type as string];
  const has = (...names: string[]) => names.some((n) => types.includes(n));
  for (const key of ["format", "pattern"])
    if (out[key] !== undefined && !has("string")) fail(param, `"${key}" needs "type": "string"`);
  if (out.pattern !== undefined && (out.minLength !== undefined || out.maxLength !== undefined))
    fail(param, `"pattern" cannot be combined with "minLength" or "maxLength" in one grammar`);
  // zod writes a format's own pattern beside it (e.g. a date's, with leap years): the pattern is what is enforced.
  if (out.pattern !== undefined && out.format !== undefined) delete out.format;
  const bounds = BOUNDS.filter((k) => out[k] !== undefined);
  if (bounds.length > 0) {
    if (!has("integer", "number")) fail(param, `"${bounds[0]}" needs "type": "integer" or "number"`);
    const { min, max } = numericBounds(out);
    if (min && max && (min.value > max.value || (min.value === max.value && (min.exclusive || max.exclusive))))
      fail(param, `no number lies between the lower and the upper bound`);
  }
  const props = out.properties as Record<string, unknown> | undefined;
  if (props) {
    const names = Object.keys(props);
    const missing = ((out.required as string[] | undefined) ?? []).find((k) => !names.includes(k));
    if (missing) fail(param, `"required" names "${missing}", which is not in "properties"`);
    if (out.minProperties !== undefined && (out.minProperties as number) > names.length)
      fail(param, `"minProperties" above the number of "properties" is not supported`);
    if (out.maxProperties !== undefined && (out.maxProperties as number) < names.length)
      fail(param, `"maxProperties" below the number of "properties" cannot hold (every property is written)`);
  }
  if (out.items === false && out.prefixItems === undefined) fail(param, `"items": false needs "prefixItems"`);
}
