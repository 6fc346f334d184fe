import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { LlmosError } from "../../src/errors.js";
import { mapOllamaOptions } from "../../src/http/ollama/options.js";
import { checkJsonSchema, checkToolSchema } from "../../src/http/openai/json-schema.js";
import { parseToolCall, planTools, ToolStreamGate } from "../../src/http/openai/tools.js";

const rejects = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof LlmosError && e.code === "invalid_request" && pattern.test(e.message));

describe("JSON schema checks for grammars", () => {
  test("normalises what the converter needs: anyOf -> oneOf, definitions -> $defs, implied object type", () => {
    const out = checkJsonSchema(
      {
        properties: { a: { anyOf: [{ type: "string" }, { type: "null" }] }, b: { $ref: "#/definitions/B" } },
        definitions: { B: { type: "integer" } },
        title: "T",
      },
      "s",
    );
    assert.deepEqual(out, {
      properties: { a: { oneOf: [{ type: "string" }, { type: "null" }] }, b: { $ref: "#/$defs/B" } },
      $defs: { B: { type: "integer" } },
      type: "object",
    });
  });

  test("a schema without a type accepts any value; bounds beyond ±(2^53-1) are accepted", () => {
    assert.deepEqual(checkJsonSchema({ description: "anything" }, "s"), {});
    const int = { type: "integer", minimum: -9007199254740991, maximum: 9007199254740991 };
    assert.deepEqual(checkJsonSchema(int, "s"), int);
  });

  test("refuses what cannot be enforced, naming where", () => {
    rejects(() => checkJsonSchema({ type: 42 }, "s"), /at s: "type" must be one of/);
    rejects(
      () => checkJsonSchema({ type: "object", properties: { a: { type: "number", multipleOf: 2 } } }, "s"),
      /at s\.properties\.a: "multipleOf" is not supported/,
    );
    rejects(() => checkJsonSchema({ type: "integer", minimum: 5, maximum: 4 }, "s"), /no number lies between/);
    rejects(() => checkJsonSchema({ type: "number", exclusiveMinimum: 1, maximum: 1 }, "s"), /no number lies/);
    rejects(() => checkJsonSchema({ type: "integer", exclusiveMinimum: 1, exclusiveMaximum: 2 }, "s"), /no integer/);
    rejects(() => checkJsonSchema({ type: "string", minimum: 1 }, "s"), /"minimum" needs "type"/);
    rejects(() => checkJsonSchema({ type: "string", pattern: "(a)\\1" }, "s"), /backreferences/);
    rejects(() => checkJsonSchema({ type: "string", pattern: "(?=a)" }, "s"), /lookaround/);
    rejects(() => checkJsonSchema({ type: "string", pattern: "[a" }, "s"), /unterminated/);
    rejects(() => checkJsonSchema({ type: "object", properties: {}, required: ["x"] }, "s"), /"required" names "x"/);
    rejects(() => checkJsonSchema({ allOf: [{ type: "string" }] }, "s"), /"allOf"/);
    rejects(() => checkJsonSchema("string", "s"), /must be an object/);
    rejects(() => checkJsonSchema({ type: "string", minLength: 5, maxLength: 2 }, "s"), /maxLength/);
    rejects(() => checkJsonSchema({ enum: [] }, "s"), /enum/);
    rejects(
      () => checkJsonSchema({ type: "object", properties: { a: { $ref: "#/$defs/missing" } } }, "s"),
      /points to no definition/,
    );
    let deep: Record<string, unknown> = { type: "string" };
    for (let i = 0; i < 70; i++) deep = { type: "array", items: deep };
    rejects(() => checkJsonSchema(deep, "s"), /nested deeper/);
  });

  test("bounds a grammar cannot spell out are refused, naming the keyword (they failed in the runner as 500s)", () => {
    for (const key of ["minLength", "maxLength"])
      rejects(
        () => checkJsonSchema({ type: "string", [key]: 1e9 }, "s"),
        new RegExp(`"${key}": 1000000000 is above 500`),
      );
    for (const key of ["minItems", "maxItems"])
      rejects(() => checkJsonSchema({ type: "array", items: { type: "string" }, [key]: 501 }, "s"), new RegExp(key));
    rejects(() => checkJsonSchema({ type: "object", maxProperties: 10_000 }, "s"), /"maxProperties": 10000/);
    checkJsonSchema({ type: "array", items: { type: "string", maxLength: 500 }, minItems: 500, maxItems: 500 }, "s");
    let deepEnum: unknown = 1;
    for (let i = 0; i < 10_000; i++) deepEnum = [deepEnum];
    rejects(() => checkJsonSchema({ enum: [deepEnum] }, "s"), /"enum" is nested deeper than 64/);
    rejects(() => checkJsonSchema({ const: deepEnum }, "s"), /"const" is nested deeper than 64/);
  });

  test("$ref cycles: left recursion and definitions that can never end are refused; real recursion passes", () => {
    rejects(
      () => checkJsonSchema({ $ref: "#/$defs/a", $defs: { a: { $ref: "#/$defs/b" }, b: { $ref: "#/$defs/a" } } }, "s"),
      /"\$ref" cycle #\/\$defs\/a -> #\/\$defs\/b -> #\/\$defs\/a/,
    );
    rejects(
      () =>
        checkJsonSchema({ $ref: "#/$defs/a", $defs: { a: { anyOf: [{ $ref: "#/$defs/a" }, { type: "null" }] } } }, "s"),
      /cycle #\/\$defs\/a -> #\/\$defs\/a/,
    );
    rejects(
      () =>
        checkJsonSchema(
          { $ref: "#/$defs/n", $defs: { n: { type: "object", properties: { next: { $ref: "#/$defs/n" } } } } },
          "s",
        ),
      /#\/\$defs\/n can never end/,
    );
    rejects(
      () =>
        checkJsonSchema(
          {
            type: "array",
            minItems: 1,
            items: { $ref: "#/$defs/n" },
            $defs: { n: { type: "array", items: { $ref: "#/$defs/n" }, minItems: 2 } },
          },
          "s",
        ),
      /can never end/,
    );
    // A tree whose children may be an empty list, or a linked list that may end in null, is fine.
    checkJsonSchema(
      {
        $ref: "#/$defs/node",
        $defs: {
          node: { type: "object", properties: { kids: { type: "array", items: { $ref: "#/$defs/node" } } } },
          list: { type: "object", properties: { next: { anyOf: [{ $ref: "#/$defs/list" }, { type: "null" }] } } },
        },
      },
      "s",
    );
    // The same with OpenAPI's `nullable` (on the object, or beside the reference).
    checkJsonSchema(
      {
        $ref: "#/$defs/list",
        $defs: {
          list: { type: "object", properties: { next: { $ref: "#/$defs/list", nullable: true } } },
          tree: { type: "object", nullable: true, properties: { left: { $ref: "#/$defs/tree" } } },
        },
      },
      "s",
    );
  });
});

describe("schemas of tools that are only offered (no grammar)", () => {
  test("any keyword is accepted; a malformed schema is still refused", () => {
    const loose = {
      type: "object",
      properties: {
        x: { type: "number", multipleOf: 5 },
        y: { not: { type: "null" } },
        z: { allOf: [{ type: "string" }] },
      },
      patternProperties: { "^a": { type: "string" } },
    };
    assert.deepEqual(checkToolSchema(loose, "p"), loose);
    assert.equal(checkToolSchema({ properties: {} }, "p").type, "object");
    rejects(
      () => checkToolSchema({ type: "object", properties: { a: { allOf: [] } } }, "p"),
      /p\.properties\.a: "allOf" must be a non-empty/,
    );
    rejects(() => checkToolSchema({ type: "object", properties: { a: { type: 1 } } }, "p"), /"type" must be one of/);
    rejects(() => checkToolSchema({ type: "object", properties: 3 }, "p"), /"properties" must be an object/);
    rejects(() => checkToolSchema({ type: "object", required: "a" }, "p"), /"required"/);
  });
});

describe("tools", () => {
  const tool = {
    type: "function" as const,
    function: { name: "f", parameters: { type: "object", properties: { x: { type: "integer" } } } },
  };

  test("forced choice builds a call grammar; auto has none; none ignores tools", () => {
    assert.deepEqual(planTools([tool], "required")!.grammar, {
      type: "json_schema",
      schema: { type: "object", properties: { name: { const: "f" }, arguments: tool.function.parameters } },
    });
    assert.equal(planTools([tool], "auto")!.grammar, undefined);
    assert.equal(planTools([tool], "none"), undefined);
  });

  test("output nested too deep to serialise again is not a call", () => {
    const deep = "[".repeat(10_000) + "]".repeat(10_000);
    assert.equal(parseToolCall(`{"name": "f", "arguments": {"x": ${deep}}}`, [tool]), null);
  });

  test("parses calls of declared tools only", () => {
    assert.deepEqual(parseToolCall(' {"name": "f", "arguments": {"x": 1}} ', [tool]), {
      name: "f",
      arguments: { x: 1 },
    });
    assert.equal(parseToolCall('{"name": "g", "arguments": {}}', [tool]), null);
    assert.equal(parseToolCall('{"name": "f", "arguments": [1]}', [tool]), null);
    assert.equal(parseToolCall("hello", [tool]), null);
  });

  test("the stream gate shows text at once and holds back a JSON start", () => {
    const text = new ToolStreamGate("auto");
    assert.equal(text.push(" "), "");
    assert.equal(text.push("Hi"), " Hi");
    assert.equal(text.push(" {x"), " {x");
    const json = new ToolStreamGate("auto");
    assert.equal(json.push("\n{"), "");
    assert.equal(json.push('"a"'), "");
    assert.equal(json.held, '\n{"a"');
  });
});

describe("Ollama options", () => {
  const ctx = { threads: 1, gpu: false, stopLimit: 4 };

  test("maps honoured options; -1 repeat_last_n is the whole history", () => {
    const m = mapOllamaOptions(
      { temperature: 0.2, top_k: 5, num_predict: 7, stop: ["a", ""], repeat_last_n: -1, num_ctx: 1024, seed: 3 },
      ctx,
    );
    assert.deepEqual(m.sampling, {
      temperature: 0.2,
      top_k: 5,
      num_predict: 7,
      stop: ["a"],
      repeat_last_n: 1_000_000,
      seed: 3,
    });
    assert.equal(m.numCtx, 1024);
  });

  test("refuses unknown options, wrong types and unsupported non-default values", () => {
    rejects(() => mapOllamaOptions({ topk: 1 }, ctx), /unknown option "topk"/);
    rejects(() => mapOllamaOptions({ top_k: 1.5 }, ctx), /options\.top_k must be an integer/);
    rejects(() => mapOllamaOptions({ num_thread: 8 }, ctx), /num_thread=8/);
    rejects(() => mapOllamaOptions({ num_gpu: 0 }, { ...ctx, gpu: true }), /num_gpu/);
    rejects(() => mapOllamaOptions({ stop: ["a", "b", "c", "d", "e"] }, ctx), /at most 4 stop/);
    rejects(() => mapOllamaOptions({ top_p: 2 }, ctx), /between 0 and 1/);
    assert.deepEqual(mapOllamaOptions({ num_gpu: 0, num_thread: 1, mirostat: 0, temperature: null }, ctx).sampling, {});
  });
});
