import { LlmosError } from "../../errors.js";
import { jsonDepth } from "../../lib/json-depth.js";
import { endlessDefinition, leftRecursion, missingRef } from "./schema-refs.js";

/**
 * Checks a JSON Schema that will become a grammar (structured outputs, Ollama `format`, tool parameters) and
 * returns the form the grammar converter understands. The converter (node-llama-cpp's) silently turns what it does
 * not know into `null`, so everything it cannot enforce is refused here with a 400 instead of producing output that
 * does not match the schema.
 *
 * Supported: `type` (one or a list of string, number, integer, boolean, null, object, array), `properties`,
 * `additionalProperties`, `items`, `prefixItems`, `minItems`/`maxItems`, `minLength`/`maxLength`,
 * `minProperties`/`maxProperties`, `enum`, `const`, `oneOf`, `anyOf` (treated as `oneOf`), `$ref` to `#/$defs/...`,
 * `$defs`/`definitions`, `format` date | time | date-time, and annotations (title, description, default, examples,
 * `$schema`, `$id`, `required`, `strict`). Every listed property is generated (a grammar cannot leave optional
 * properties out, so `required` is implied for all of them). A schema without a type accepts any scalar or object.
 *
 * Bounds (400 naming the keyword): nesting up to 64 levels (enum and const values too); length, item and property
 * counts up to {@link MAX_SCHEMA_REPETITIONS}; every `$ref` defined, no definition that refers back to itself before
 * any output (`a -> b -> a`), and none that always contains itself (its output could never end).
 */
export function checkJsonSchema(schema: unknown, param: string): Record<string, unknown> {
  const out = normalise(schema, param, 0) as Record<string, unknown>;
  const problem = missingRef(out) ?? leftRecursion(out) ?? endlessDefinition(out);
  if (problem) fail(param, problem);
  return out;
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
  "required",
  "strict",
  "deprecated",
  "readOnly",
  "writeOnly",
  "nullable",
]);
const FORMATS = new Set(["date", "time", "date-time"]);
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
  if (schema === true) return anyValue();
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
      case "additionalProperties":
        if (value === false || value === true) out.additionalProperties = value;
        else out.additionalProperties = normalise(value, at, depth + 1);
        break;
      case "items":
        if (value === false) break;
        out.items = normalise(value, at, depth + 1);
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
      case "format":
        if (typeof value !== "string") fail(param, `"format" must be a string`);
        // Other formats (email, uri, ...) cannot be enforced; a plain string is all the grammar could promise.
        if (!FORMATS.has(value))
          fail(param, `"format": "${value}" is not supported (supported: ${[...FORMATS].join(", ")})`);
        out.format = value;
        break;
      default:
        if (ANNOTATIONS.has(key) || key.startsWith("x-")) continue;
        fail(
          param,
          `"${key}" is not supported by llmos' grammar-constrained output (the output could not be guaranteed to match it)`,
        );
    }
  }
  if (
    out.minLength !== undefined &&
    out.maxLength !== undefined &&
    (out.maxLength as number) < (out.minLength as number)
  )
    fail(param, `"maxLength" is below "minLength"`);
  if (out.minItems !== undefined && out.maxItems !== undefined && (out.maxItems as number) < (out.minItems as number))
    fail(param, `"maxItems" is below "minItems"`);
  if (input.properties !== undefined && out.type === undefined) out.type = "object";
  if (out.format !== undefined && out.type !== "string") fail(param, `"format" needs "type": "string"`);
  const constrained = ["type", "oneOf", "enum", "const", "$ref"].some((k) => out[k] !== undefined);
  if (!constrained) {
    if (out.items !== undefined || out.prefixItems !== undefined) out.type = "array";
    else return { ...anyValue(), ...(out.$defs ? { $defs: out.$defs } : {}) };
  }
  return out;
}

/** "Any JSON value" in the converter's terms: any scalar, or an object of any values. */
function anyValue(): Record<string, unknown> {
  return { oneOf: [{ type: ["string", "number", "boolean", "null"] }, { type: "object", additionalProperties: true }] };
}
