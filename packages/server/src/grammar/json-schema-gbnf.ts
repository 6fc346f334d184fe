/**
 * JSON Schema -> GBNF, llmos' own converter, used by both engines so they honour the same schemas. The output is
 * compact JSON (one optional space after `{ [ , :`) that is guaranteed to match the schema; a schema must have been
 * checked first (`http/openai/json-schema.ts` refuses what the grammar cannot guarantee).
 *
 * - types (one or a list), `nullable`, `const`, `enum`, `oneOf`/`anyOf`, `$ref` into `$defs`/`definitions`
 *   (recursive definitions become recursive rules);
 * - objects: every declared property is written, in order (so `required` always holds); without properties,
 *   `additionalProperties` (a schema, or any value) with `minProperties`/`maxProperties`;
 * - arrays: `items`, `prefixItems`, `minItems`/`maxItems`;
 * - strings: `minLength`/`maxLength` (in characters), `pattern` (see regex-pattern.ts), `format` date, time,
 *   date-time, uuid;
 * - integers and numbers: `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` (integer-range.ts,
 *   decimal-range.ts); bounds at or beyond ±(2^53-1) are no bound.
 */
import { numberRange, type Bound } from "./decimal-range.js";
import { literal, repeat } from "./gbnf-text.js";
import { integerRange } from "./integer-range.js";
import { patternToGbnf } from "./regex-pattern.js";

type Schema = Record<string, unknown>;

/** Largest integer a bound may have and still be a bound; larger ones (zod's safe-integer limits) are none. */
export const UNBOUNDED_FROM = Number.MAX_SAFE_INTEGER;

const PRIMITIVES: Record<string, string> = {
  ws: '" "?',
  char: '[^"\\\\\\x7F\\x00-\\x1F] | "\\\\" (["\\\\/bfnrt] | "u" [0-9a-fA-F]{4})',
  string: '"\\"" char* "\\""',
  integer: '"-"? ("0" | [1-9] [0-9]{0,15})',
  number: '"-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? [1-9] [0-9]{0,2})?',
  boolean: '"true" | "false"',
  null: '"null"',
  value: "object | array | string | number | boolean | null",
  object: '"{" ws (string ":" ws value ("," ws string ":" ws value)*)? "}"',
  array: '"[" ws (value ("," ws value)*)? "]"',
  date: '[0-9]{4} "-" ("0" [1-9] | "1" [0-2]) "-" ("0" [1-9] | [12] [0-9] | "3" [01])',
  time: '([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,6})? ("Z" | [+-] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9])',
  "date-time": 'date "T" time',
  uuid: '[0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12}',
};
const PRIMITIVE_DEPS: Record<string, string[]> = {
  char: [],
  string: ["char"],
  value: ["object", "array", "string", "number", "boolean", "null"],
  object: ["ws", "string", "value"],
  array: ["ws", "value"],
  "date-time": ["date", "time"],
};
const FORMATS = new Set(["date", "time", "date-time", "uuid"]);

/** The GBNF of `schema`, whose root rule is `root`. */
export function jsonSchemaToGbnf(schema: unknown): string {
  const converter = new Converter(schema);
  const root = converter.visit(schema, "root");
  return converter.grammar(root);
}

class Converter {
  private readonly rules = new Map<string, string>();
  private readonly defs: Record<string, unknown>;
  private readonly defRules = new Map<string, string>();

  constructor(root: unknown) {
    const r = (root && typeof root === "object" ? root : {}) as Schema;
    this.defs = { ...((r.definitions as Schema) ?? {}), ...((r.$defs as Schema) ?? {}) };
  }

  grammar(rootExpr: string): string {
    const lines = [`root ::= ${rootExpr}`];
    for (const [name, body] of this.rules) lines.push(`${name} ::= ${body}`);
    return `${lines.join("\n")}\n`;
  }

  private primitive(name: string): string {
    if (!this.rules.has(name)) {
      this.rules.set(name, PRIMITIVES[name]!);
      for (const dep of PRIMITIVE_DEPS[name] ?? []) this.primitive(dep);
    }
    return name;
  }

  /** A new rule named after `hint` (made unique); returns its name. */
  private rule(hint: string, body: string): string {
    const base = `s-${hint.replace(/[^a-zA-Z0-9-]+/g, "-").replace(/^-+|-+$/g, "") || "x"}`.slice(0, 60);
    let name = base;
    for (let i = 1; this.rules.has(name); i++) name = `${base}-${i}`;
    this.rules.set(name, body);
    return name;
  }

  /** An expression (a rule name, or a short inline expression) for values matching `schema`. */
  visit(input: unknown, name: string): string {
    if (input === true || input === undefined) return this.primitive("value");
    if (input === false) throw new Error(`${name}: a false schema matches nothing`);
    const schema = input as Schema;
    if (schema.nullable === true) {
      const { nullable: _, ...rest } = schema;
      return this.rule(name, `${this.visit(rest, name)} | ${this.primitive("null")}`);
    }
    if (typeof schema.$ref === "string") return this.ref(schema.$ref);
    const union = (schema.oneOf ?? schema.anyOf) as unknown[] | undefined;
    if (Array.isArray(union)) return this.rule(name, union.map((s, i) => this.visit(s, `${name}-${i}`)).join(" | "));
    if ("const" in schema) return literal(JSON.stringify(schema.const));
    if (Array.isArray(schema.enum))
      return this.rule(name, schema.enum.map((v) => literal(JSON.stringify(v))).join(" | "));
    let type = schema.type;
    if (Array.isArray(type)) {
      if (type.length === 1) type = type[0];
      else return this.rule(name, type.map((t) => this.visit({ ...schema, type: t }, `${name}-${t}`)).join(" | "));
    }
    if (type === undefined) {
      if (schema.properties || schema.additionalProperties !== undefined) type = "object";
      else if (schema.items !== undefined || schema.prefixItems !== undefined) type = "array";
      else return this.primitive("value");
    }
    switch (type) {
      case "object":
        return this.object(schema, name);
      case "array":
        return this.array(schema, name);
      case "string":
        return this.string(schema, name);
      case "integer":
      case "number":
        return this.number(schema, type, name);
      case "boolean":
      case "null":
        return this.primitive(type);
      default:
        throw new Error(`${name}: unknown type ${JSON.stringify(type)}`);
    }
  }

  private ref(ref: string): string {
    const def = /^#\/(?:\$defs|definitions)\/(.+)$/.exec(ref)?.[1];
    if (def === undefined || !(def in this.defs)) throw new Error(`$ref ${ref} points to no definition`);
    const known = this.defRules.get(def);
    if (known) return known;
    // Named before it is visited, so a definition that refers to itself becomes a recursive rule.
    const name = this.rule(`def-${def}`, "");
    this.defRules.set(def, name);
    this.rules.set(name, this.visit(this.defs[def], `def-${def}`));
    return name;
  }

  private object(schema: Schema, name: string): string {
    const ws = this.primitive("ws");
    const properties = (schema.properties ?? {}) as Record<string, unknown>;
    const keys = Object.keys(properties);
    if (keys.length > 0) {
      const pairs = keys.map(
        (key) => `${literal(JSON.stringify(key))} ":" ${ws} ${this.visit(properties[key], `${name}-${key}`)}`,
      );
      return this.rule(name, `"{" ${ws} ${pairs.join(` "," ${ws} `)} "}"`);
    }
    const additional = schema.additionalProperties;
    if (additional === false) return this.rule(name, `"{" ${ws} "}"`);
    const min = (schema.minProperties as number | undefined) ?? 0;
    const max = (schema.maxProperties as number | undefined) ?? null;
    if ((additional === undefined || additional === true) && min === 0 && max === null) return this.primitive("object");
    const value = additional && typeof additional === "object" ? this.visit(additional, `${name}-value`) : "value";
    if (value === "value") this.primitive("value");
    const pair = this.rule(`${name}-kv`, `${this.primitive("string")} ":" ${ws} ${value}`);
    return this.rule(name, `"{" ${ws} ${repeat(pair, min, max, `"," ${ws}`)} "}"`);
  }

  private array(schema: Schema, name: string): string {
    const ws = this.primitive("ws");
    const prefix = (schema.prefixItems as unknown[] | undefined) ?? [];
    const min = (schema.minItems as number | undefined) ?? 0;
    const max = (schema.maxItems as number | undefined) ?? null;
    const parts = prefix.map((s, i) => this.visit(s, `${name}-${i}`));
    if (schema.items === false) {
      if (min > parts.length) throw new Error(`${name}: minItems is above the number of prefixItems`);
      return this.rule(name, `"[" ${ws} ${parts.join(` "," ${ws} `)} "]"`);
    }
    const item = this.visit(schema.items ?? true, `${name}-item`);
    if (parts.length === 0) return this.rule(name, `"[" ${ws} ${repeat(item, min, max, `"," ${ws}`)} "]"`);
    const more = repeat(`"," ${ws} ${item}`, Math.max(0, min - parts.length), max === null ? null : max - parts.length);
    return this.rule(name, `"[" ${ws} ${parts.join(` "," ${ws} `)} ${more === '""' ? "" : `(${more})`} "]"`);
  }

  private string(schema: Schema, name: string): string {
    if (typeof schema.format === "string" && FORMATS.has(schema.format))
      return this.rule(name, `"\\"" ${this.primitive(schema.format)} "\\""`);
    if (typeof schema.pattern === "string") return this.rule(name, `"\\"" (${patternToGbnf(schema.pattern)}) "\\""`);
    const min = (schema.minLength as number | undefined) ?? 0;
    const max = (schema.maxLength as number | undefined) ?? null;
    if (min === 0 && max === null) return this.primitive("string");
    return this.rule(name, `"\\"" ${repeat(this.primitive("char"), min, max)} "\\""`);
  }

  private number(schema: Schema, type: "integer" | "number", name: string): string {
    const { min, max } = numericBounds(schema);
    if (!min && !max) return this.primitive(type);
    let expr: string | null;
    if (type === "integer") {
      const lo = min ? (min.exclusive ? Math.floor(min.value) + 1 : Math.ceil(min.value)) : null;
      const hi = max ? (max.exclusive ? Math.ceil(max.value) - 1 : Math.floor(max.value)) : null;
      expr = integerRange(lo, hi);
    } else expr = numberRange(min, max);
    if (expr === null) throw new Error(`${name}: no ${type} lies within the bounds`);
    return this.rule(name, expr);
  }
}

/** The lower and upper bound a schema sets (draft-4 boolean `exclusiveMinimum` too); huge bounds are none. */
export function numericBounds(schema: Schema): { min: Bound | null; max: Bound | null } {
  const bound = (inclusive: unknown, exclusive: unknown, sign: 1 | -1): Bound | null => {
    const candidates: Bound[] = [];
    if (typeof inclusive === "number") candidates.push({ value: inclusive, exclusive: exclusive === true });
    if (typeof exclusive === "number") candidates.push({ value: exclusive, exclusive: true });
    const real = candidates.filter((b) => Math.abs(b.value) < UNBOUNDED_FROM);
    if (real.length === 0) return null;
    // The tighter of the two: the larger lower bound / the smaller upper bound (exclusive wins a tie).
    return real.reduce((a, b) => (a.value * sign > b.value * sign || (a.value === b.value && a.exclusive) ? a : b));
  };
  return {
    min: bound(schema.minimum, schema.exclusiveMinimum, 1),
    max: bound(schema.maximum, schema.exclusiveMaximum, -1),
  };
}
