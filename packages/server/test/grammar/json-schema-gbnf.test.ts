import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { jsonSchemaToGbnf } from "../../src/grammar/json-schema-gbnf.js";
import { patternToGbnf, UnsupportedPatternError } from "../../src/grammar/regex-pattern.js";
import { gbnfToRegExp } from "../support/gbnf-regexp.js";

/** A matcher for the JSON text the grammar of `schema` accepts (flat schemas: no recursive rules). */
function accepts(schema: unknown): (json: string) => boolean {
  const grammar = jsonSchemaToGbnf(schema);
  // The generic rules (value, object, array) are recursive; the schemas tested here do not use them.
  const flat = grammar
    .split("\n")
    .filter((l) => !/^(value|object|array) ::=/.test(l))
    .join("\n");
  const re = gbnfToRegExp(flat);
  return (json) => re.test(json);
}

describe("JSON schema -> GBNF", () => {
  test("objects write every property in order, compactly", () => {
    const ok = accepts({
      type: "object",
      properties: { name: { type: "string", maxLength: 3 }, age: { type: "integer", minimum: 0, maximum: 120 } },
      required: ["name"],
    });
    assert.ok(ok('{"name": "Bob", "age": 42}'));
    assert.ok(ok('{"name":"","age":0}'));
    assert.ok(ok('{ "name": "a\\"b", "age": 120}'), "an escape is one character");
    assert.equal(ok('{"name": "Bobby", "age": 42}'), false, "maxLength");
    assert.equal(ok('{"name": "Bob", "age": 121}'), false, "maximum");
    assert.equal(ok('{"name": "Bob", "age": -1}'), false, "minimum");
    assert.equal(ok('{"age": 1, "name": "Bob"}'), false, "order");
    assert.equal(ok('{"name": "Bob"}'), false, "every property");
  });

  test("enum, const, nullable, type lists, anyOf", () => {
    const ok = accepts({
      type: "object",
      properties: {
        pet: { enum: ["cat", "dog", 3, null] },
        v: { const: { a: [1, true] } },
        n: { type: "number", nullable: true, exclusiveMinimum: 0 },
        t: { type: ["string", "null"], minLength: 1 },
        u: { anyOf: [{ type: "boolean" }, { type: "integer", maximum: -5 }] },
      },
    });
    assert.ok(ok('{"pet": "cat", "v": {"a":[1,true]}, "n": null, "t": "x", "u": true}'));
    assert.ok(ok('{"pet": 3, "v": {"a":[1,true]}, "n": 0.001, "t": null, "u": -7}'));
    assert.ok(ok('{"pet": null, "v": {"a":[1,true]}, "n": 12, "t": null, "u": false}'));
    assert.equal(ok('{"pet": "cow", "v": {"a":[1,true]}, "n": 1, "t": "x", "u": true}'), false);
    assert.equal(ok('{"pet": "cat", "v": {"a":[1,true]}, "n": 0, "t": "x", "u": true}'), false, "exclusiveMinimum");
    assert.equal(ok('{"pet": "cat", "v": {"a":[1,true]}, "n": 1, "t": "", "u": true}'), false, "minLength");
    assert.equal(ok('{"pet": "cat", "v": {"a":[1,true]}, "n": 1, "t": "x", "u": -4}'), false, "anyOf bound");
  });

  test("arrays: items with minItems/maxItems, prefixItems", () => {
    const ok = accepts({ type: "array", items: { type: "integer", minimum: 1, maximum: 3 }, minItems: 1, maxItems: 3 });
    assert.ok(ok("[1]"));
    assert.ok(ok("[1, 2,3]"));
    assert.equal(ok("[]"), false);
    assert.equal(ok("[1,2,3,1]"), false);
    assert.equal(ok("[4]"), false);
    const tuple = accepts({ type: "array", prefixItems: [{ type: "string" }, { type: "boolean" }], items: false });
    assert.ok(tuple('["a", true]'));
    assert.equal(tuple('["a"]'), false);
    assert.equal(tuple('["a", true, 1]'), false);
  });

  test("formats: date, time, date-time, uuid", () => {
    const ok = accepts({
      type: "object",
      properties: {
        d: { type: "string", format: "date" },
        t: { type: "string", format: "time" },
        dt: { type: "string", format: "date-time" },
        id: { type: "string", format: "uuid" },
      },
    });
    const good =
      '{"d": "2026-11-29", "t": "23:59:01Z", "dt": "2026-01-31T08:00:00.123+01:00", "id": "123e4567-e89b-12d3-a456-426614174000"}';
    assert.ok(ok(good));
    assert.equal(ok(good.replace("2026-11-29", "2026-13-01")), false);
    assert.equal(ok(good.replace("23:59:01Z", "24:00:00Z")), false);
    assert.equal(ok(good.replace("426614174000", "42661417400")), false);
  });

  test("maps: additionalProperties with min/maxProperties", () => {
    const ok = accepts({
      type: "object",
      additionalProperties: { type: "integer" },
      minProperties: 1,
      maxProperties: 2,
    });
    assert.ok(ok('{"a": 1}'));
    assert.ok(ok('{"a": 1, "b": 2}'));
    assert.equal(ok("{}"), false);
    assert.equal(ok('{"a": 1, "b": 2, "c": 3}'), false);
    assert.equal(ok('{"a": "x"}'), false);
    assert.ok(accepts({ type: "object", additionalProperties: false })("{}"));
  });

  test("$ref and $defs, recursive definitions as recursive rules", () => {
    const ok = accepts({
      type: "object",
      properties: { a: { $ref: "#/$defs/Small" }, b: { $ref: "#/definitions/Small" } },
      $defs: { Small: { type: "integer", minimum: 0, maximum: 9 } },
      definitions: { Small: { type: "integer", minimum: 0, maximum: 9 } },
    });
    assert.ok(ok('{"a": 3, "b": 9}'));
    assert.equal(ok('{"a": 10, "b": 9}'), false);
    const tree = jsonSchemaToGbnf({
      $ref: "#/$defs/Node",
      $defs: {
        Node: {
          type: "object",
          properties: { v: { type: "integer" }, kids: { type: "array", items: { $ref: "#/$defs/Node" } } },
        },
      },
    });
    assert.match(tree, /^s-def-Node-kids ::= .*s-def-Node[ )]/m, "the definition refers to itself");
  });
});

describe("pattern -> GBNF", () => {
  const cases: Array<[string, string[]]> = [
    ["^[A-Z]{2}-\\d{3,4}$", ["AB-123", "AB-1234", "A-123", "ab-123", "AB-12345", "XY-000", ""]],
    ["^(cat|dog)s?$", ["cat", "dogs", "cats", "do", "catss", "bird"]],
    ["^a.c$", ["abc", "a-c", "ac", "abbc", 'a"c', "a\\c", "a\nc"]],
    ['^[^"x]+$', ["ab", 'a"b', "a\\b", "axb"]],
    ["b+", ["b", "abba", "", "ccc", "xbx"]],
    ["^\\w+@\\w+\\.com$", ["me@x.com", "me@x.org", "@x.com", "a_b@c1.com"]],
    ["^[^0-9]*$", ["abc", "a1", "", "xyz!"]],
    ["^(?:ab){2}$|^z$", ["abab", "ab", "z", "zz", "ababab"]],
    ["^\\d{4}-\\d{2}$", ["2026-11", "26-11", "2026-1"]],
    ['^say "hi"$', ['say "hi"', "say hi"]],
    ["^[a\\-z]+$", ["a-z", "az", "b"]],
  ];
  for (const [pattern, samples] of cases) {
    test(`${pattern} matches what the RegExp matches`, () => {
      const re = gbnfToRegExp(`root ::= "\\"" (${patternToGbnf(pattern)}) "\\""`);
      const js = new RegExp(pattern, "u");
      for (const s of samples)
        assert.equal(re.test(JSON.stringify(s)), js.test(s), `${pattern} on ${JSON.stringify(s)}`);
    });
  }

  test("what a grammar cannot express is refused", () => {
    for (const p of ["(a)\\1", "(?=a)b", "(?<!a)b", "\\bword", "\\p{L}", "a^b", "a{2000}", "(ab|cd){501}", "x{1,501}"])
      assert.throws(() => patternToGbnf(p), UnsupportedPatternError, p);
  });
});
