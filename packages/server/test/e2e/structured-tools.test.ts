import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { z } from "zod";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";

/** A small validator for the schemas used here (type, properties, required, enum, maxLength, additionalProperties). */
function validate(value: unknown, schema: any, path = "$"): string[] {
  const errors: string[] = [];
  const t = schema.type;
  const typeOf = (v: unknown) =>
    v === null ? "null" : Array.isArray(v) ? "array" : Number.isInteger(v) ? "integer" : typeof v;
  if (t) {
    const actual = typeOf(value);
    const ok = t === actual || (t === "number" && actual === "integer");
    if (!ok) return [`${path}: expected ${t}, got ${actual}`];
  }
  if (schema.enum && !schema.enum.includes(value)) errors.push(`${path}: ${JSON.stringify(value)} not in enum`);
  if (typeof value === "string" && schema.maxLength !== undefined && value.length > schema.maxLength)
    errors.push(`${path}: longer than ${schema.maxLength}`);
  if (t === "object") {
    const obj = value as Record<string, unknown>;
    for (const key of schema.required ?? []) if (!(key in obj)) errors.push(`${path}: missing ${key}`);
    for (const [key, v] of Object.entries(obj)) {
      if (schema.properties?.[key]) errors.push(...validate(v, schema.properties[key], `${path}.${key}`));
      else if (schema.additionalProperties === false || schema.additionalProperties === undefined)
        errors.push(`${path}: unexpected ${key}`);
    }
  }
  return errors;
}

const PERSON = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 12 },
    age: { type: "integer" },
    pet: { enum: ["cat", "dog", "none"] },
    happy: { type: "boolean" },
  },
  required: ["name", "age", "pet", "happy"],
  additionalProperties: false,
};

const WEATHER_TOOL = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Weather for a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string", maxLength: 16 }, unit: { enum: ["c", "f"] } },
      required: ["city", "unit"],
    },
  },
};
const TIME_TOOL = {
  type: "function" as const,
  function: {
    name: "get_time",
    description: "Current time",
    parameters: { type: "object", properties: { zone: { type: "string", maxLength: 8 } }, required: ["zone"] },
  },
};

/** An ordinary zod schema: zod 4 writes minimum/maximum for .int(), patterns beside formats, nullable type lists. */
const ORDER = z.object({
  name: z.string().min(1).max(12),
  qty: z.number().int().min(1).max(20),
  price: z.number().positive().max(99.5),
  discount: z.number().min(-0.25).lt(0.5),
  code: z.string().regex(/^[A-Z]{3}-\d{2}$/),
  tags: z
    .array(z.enum(["new", "sale", "gift"]))
    .min(1)
    .max(3),
  day: z.iso.date(),
  id: z.uuid(),
  note: z.string().max(8).nullable(),
  ship: z.object({ city: z.string().max(10), zip: z.number().int() }),
});

describe("structured outputs and tools (official openai client)", () => {
  let d: TestDaemon;
  let client: OpenAI;
  before(async () => {
    // The tool listing and a call take more than 512 tokens of this model's small vocabulary.
    d = await startTestDaemon({ contextSize: 1024 });
    client = new OpenAI({ baseURL: `${d.url}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  after(async () => d?.stop());

  test("response_format json_schema: output parses and validates, for several seeds", async () => {
    for (const seed of [1, 2, 3]) {
      const r = await client.chat.completions.create({
        model: "stories",
        messages: [{ role: "user", content: "Describe a person" }],
        response_format: { type: "json_schema", json_schema: { name: "person", schema: PERSON } },
        max_tokens: 300,
        temperature: 1,
        seed,
      });
      assert.equal(r.choices[0]!.finish_reason, "stop", r.choices[0]!.message.content!);
      const value = JSON.parse(r.choices[0]!.message.content!);
      assert.deepEqual(validate(value, PERSON), [], r.choices[0]!.message.content!);
    }
  });

  test("zod schemas with numeric bounds, patterns and formats: the output always parses with zod", async () => {
    const schema = z.toJSONSchema(ORDER) as Record<string, unknown>;
    for (const seed of [1, 2, 3, 4]) {
      const r = await client.chat.completions.create({
        model: "stories",
        messages: [{ role: "user", content: "An order, please" }],
        response_format: { type: "json_schema", json_schema: { name: "order", schema, strict: true } },
        max_tokens: 400,
        temperature: 1,
        seed,
      });
      const text = r.choices[0]!.message.content!;
      assert.equal(r.choices[0]!.finish_reason, "stop", text);
      const parsed = ORDER.safeParse(JSON.parse(text));
      assert.ok(parsed.success, `${text}\n${parsed.error}`);
    }
  });

  test("a forced tool call cut off by max_tokens: finish_reason length, no partial JSON as content", async () => {
    const params = {
      model: "stories",
      messages: [{ role: "user" as const, content: "weather?" }],
      tools: [WEATHER_TOOL],
      tool_choice: "required" as const,
      max_tokens: 4,
      temperature: 0,
    };
    const r = await client.chat.completions.create(params);
    assert.equal(r.choices[0]!.finish_reason, "length");
    assert.ok(!r.choices[0]!.message.content, `content: ${JSON.stringify(r.choices[0]!.message.content)}`);
    assert.equal(r.choices[0]!.message.tool_calls, undefined);
    assert.equal(r.usage!.completion_tokens, 4);
    const stream = await client.chat.completions.create({ ...params, stream: true });
    let content = "";
    let finish: string | null = null;
    for await (const c of stream) {
      content += c.choices[0]?.delta?.content ?? "";
      assert.equal(c.choices[0]?.delta?.tool_calls, undefined);
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(content, "");
    assert.equal(finish, "length");
  });

  test("tools offered with tool_choice auto may use keywords no grammar enforces", async () => {
    const r = await client.chat.completions.create({
      model: "stories",
      messages: [{ role: "user", content: "Hi" }],
      tools: [
        {
          type: "function",
          function: {
            name: "f",
            parameters: { type: "object", properties: { x: { type: "number", multipleOf: 5 }, y: { not: {} } } },
          },
        },
      ],
      max_tokens: 3,
      temperature: 0,
    });
    assert.equal(r.choices[0]!.finish_reason, "length");
  });

  test("response_format json_object starts a JSON value; streaming gives the same as non-streaming", async () => {
    const params = {
      model: "stories",
      messages: [{ role: "user" as const, content: "json" }],
      response_format: { type: "json_object" as const },
      max_tokens: 15,
      temperature: 0,
    };
    const r = await client.chat.completions.create(params);
    assert.match(r.choices[0]!.message.content!, /^\s*[{[]/);
    const stream = await client.chat.completions.create({ ...params, stream: true });
    let text = "";
    for await (const c of stream) text += c.choices[0]?.delta?.content ?? "";
    assert.equal(text, r.choices[0]!.message.content);
  });

  test("invalid or unenforceable JSON schemas are clear 400s", async () => {
    for (const [schema, pattern] of [
      [{ type: 42 }, /"type" must be one of/],
      [{ type: "object", properties: { a: { type: "string", pattern: "^(a)\\1$" } } }, /"pattern".*backreferences/],
      [{ type: "object", properties: { a: { $ref: "http://x/y" } } }, /\$ref/],
      [{ type: "string", format: "email" }, /format/],
    ] as const) {
      await assert.rejects(
        client.chat.completions.create({
          model: "stories",
          messages: [{ role: "user", content: "x" }],
          response_format: { type: "json_schema", json_schema: { name: "x", schema: schema as any } },
        }),
        (e: any) => e instanceof OpenAI.BadRequestError && pattern.test(e.message) && e.code === "invalid_request",
      );
    }
  });

  test("tool_choice required: a tool call with arguments matching the schema, then the tool result round trip", async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "What is the weather in Paris?" }];
    const r = await client.chat.completions.create({
      model: "stories",
      messages,
      tools: [WEATHER_TOOL, TIME_TOOL],
      tool_choice: "required",
      max_tokens: 200,
      temperature: 0,
    });
    const choice = r.choices[0]!;
    assert.equal(choice.finish_reason, "tool_calls");
    assert.equal(choice.message.content, null);
    const call = choice.message.tool_calls![0]!;
    assert.equal(call.type, "function");
    assert.match(call.id, /^call_/);
    const fn = (call as OpenAI.ChatCompletionMessageFunctionToolCall).function;
    assert.ok(["get_weather", "get_time"].includes(fn.name));
    const args = JSON.parse(fn.arguments);
    const schema = fn.name === "get_weather" ? WEATHER_TOOL.function.parameters : TIME_TOOL.function.parameters;
    assert.deepEqual(validate(args, schema), [], fn.arguments);

    messages.push(choice.message as OpenAI.ChatCompletionMessageParam, {
      role: "tool",
      tool_call_id: call.id,
      content: '{"temperature": 21}',
    });
    const answer = await client.chat.completions.create({
      model: "stories",
      messages,
      tools: [WEATHER_TOOL, TIME_TOOL],
      max_tokens: 12,
      temperature: 0,
    });
    assert.equal(answer.choices[0]!.message.role, "assistant");
    assert.ok(answer.choices[0]!.message.content, "an assistant message after the tool result");
    assert.equal(answer.choices[0]!.finish_reason, "length");

    // The tool description and the tool result reach the prompt.
    const rendered = await api(d, "POST", "/api/apply-template", { model: "stories", messages, tools: [WEATHER_TOOL] });
    assert.equal(rendered.status, 200, rendered.text);
    assert.match(rendered.json.prompt, /get_weather/);
    assert.match(rendered.json.prompt, /Tool: \{"temperature": 21\}/);
  });

  test("named tool_choice forces that tool; streamed as tool_call deltas", async () => {
    const stream = await client.chat.completions.create({
      model: "stories",
      messages: [{ role: "user", content: "time?" }],
      tools: [WEATHER_TOOL, TIME_TOOL],
      tool_choice: { type: "function", function: { name: "get_time" } },
      max_tokens: 200,
      temperature: 0.8,
      seed: 7,
      stream: true,
    });
    let name = "";
    let args = "";
    let id = "";
    let finish: string | null = null;
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta;
      for (const tc of delta?.tool_calls ?? []) {
        assert.equal(tc.index, 0);
        if (tc.id) id = tc.id;
        name += tc.function?.name ?? "";
        args += tc.function?.arguments ?? "";
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(name, "get_time");
    assert.match(id, /^call_/);
    assert.deepEqual(validate(JSON.parse(args), TIME_TOOL.function.parameters), [], args);
    assert.equal(finish, "tool_calls");
  });

  test("tool_choice auto: free text from this model stays content", async () => {
    const r = await client.chat.completions.create({
      model: "stories",
      messages: [{ role: "user", content: "Tell me a story" }],
      tools: [WEATHER_TOOL],
      max_tokens: 10,
      temperature: 0,
    });
    assert.ok(typeof r.choices[0]!.message.content === "string" && r.choices[0]!.message.content.length > 0);
    assert.equal(r.choices[0]!.message.tool_calls, undefined);
  });

  test("malformed tools and tool_choice are 400s", async () => {
    const bad = [
      { tools: [WEATHER_TOOL], tool_choice: { type: "function", function: { name: "missing" } } },
      { tools: [WEATHER_TOOL, WEATHER_TOOL], tool_choice: "required" },
      {
        tools: [{ type: "function", function: { name: "x", parameters: { type: "string" } } }],
        tool_choice: "required",
      },
      { tools: [{ type: "function", function: { name: "bad name!" } }] },
      { tools: [{ type: "function" }] },
      { tool_choice: "required" },
      { tools: [WEATHER_TOOL], tool_choice: "required", response_format: { type: "json_object" } },
    ];
    for (const extra of bad) {
      const r = await api(d, "POST", "/v1/chat/completions", {
        model: "stories",
        messages: [{ role: "user", content: "x" }],
        ...extra,
      });
      assert.equal(r.status, 400, `${JSON.stringify(extra)} -> ${r.text}`);
      assert.equal(r.json.error.type, "invalid_request_error");
    }
  });

  test("logprobs with top_logprobs, n > 1, and the user field", async () => {
    const r = await client.chat.completions.create({
      model: "stories",
      messages: [{ role: "user", content: "Hi" }],
      max_tokens: 5,
      temperature: 0,
      logprobs: true,
      top_logprobs: 3,
      n: 2,
      user: "alice",
    });
    assert.equal(r.choices.length, 2);
    assert.deepEqual(
      r.choices.map((c) => c.index),
      [0, 1],
    );
    for (const c of r.choices) {
      const content = c.logprobs!.content!;
      assert.equal(content.length, 5);
      // (The first token's leading space may be dropped from the content by the detokenizer.)
      assert.equal(
        content
          .map((l) => l.token)
          .join("")
          .trim(),
        c.message.content!.trim(),
      );
      for (const l of content) {
        assert.ok(l.logprob <= 0);
        assert.equal(l.top_logprobs.length, 3);
        // Greedy: the sampled token is the most likely one.
        assert.ok(l.top_logprobs[0]!.logprob <= l.logprob + 1e-6);
      }
    }
    assert.equal(r.choices[0]!.message.content, r.choices[1]!.message.content, "greedy choices agree");
    assert.equal(r.usage!.completion_tokens, 10);
  });
});
