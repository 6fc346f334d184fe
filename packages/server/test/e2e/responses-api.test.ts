import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { z } from "zod";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";

const WEATHER = {
  type: "function" as const,
  name: "get_weather",
  description: "Weather for a city",
  strict: true,
  parameters: {
    type: "object",
    properties: { city: { type: "string", maxLength: 12 }, days: { type: "integer", minimum: 1, maximum: 7 } },
    required: ["city", "days"],
    additionalProperties: false,
  },
};

describe("/v1/responses (official openai client)", () => {
  let d: TestDaemon;
  let client: OpenAI;
  let other: OpenAI;
  let keyA: string;
  before(async () => {
    d = await startTestDaemon({ contextSize: 1024 });
    keyA = (await d.security.keys.create({ name: "a", scopes: ["inference"] })).secret;
    const keyB = (await d.security.keys.create({ name: "b", scopes: ["inference"] })).secret;
    client = new OpenAI({ baseURL: `${d.url}/v1`, apiKey: keyA, maxRetries: 0 });
    other = new OpenAI({ baseURL: `${d.url}/v1`, apiKey: keyB, maxRetries: 0 });
  });
  after(async () => d?.stop());

  test("text input with instructions: a completed or incomplete response with output_text and usage", async () => {
    const r = await client.responses.create({
      model: "stories",
      instructions: "You tell stories.",
      input: "Once upon a time",
      max_output_tokens: 12,
      temperature: 0,
    });
    assert.match(r.id, /^resp_/);
    assert.equal(r.object, "response");
    assert.equal(r.status, "incomplete");
    assert.deepEqual(r.incomplete_details, { reason: "max_output_tokens" });
    assert.equal(r.output.length, 1);
    const item = r.output[0] as OpenAI.Responses.ResponseOutputMessage;
    assert.equal(item.type, "message");
    assert.equal(item.role, "assistant");
    assert.ok(r.output_text.length > 0);
    assert.equal(r.usage!.output_tokens, 12);
    assert.ok(r.usage!.input_tokens > 4);
    assert.equal(r.usage!.total_tokens, r.usage!.input_tokens + 12);
    assert.equal(r.instructions, "You tell stories.");
  });

  test("streamed with the Responses event types; the same greedy text as not streamed", async () => {
    const params = { model: "stories", input: "Once upon a time", max_output_tokens: 20, temperature: 0 };
    const plain = await client.responses.create(params);
    const stream = await client.responses.create({ ...params, stream: true });
    const types: string[] = [];
    let text = "";
    let seq = -1;
    let final: OpenAI.Responses.Response | undefined;
    for await (const e of stream) {
      types.push(e.type);
      assert.equal(e.sequence_number, seq + 1, "sequence numbers count up");
      seq = e.sequence_number;
      if (e.type === "response.output_text.delta") text += e.delta;
      if (e.type === "response.incomplete" || e.type === "response.completed") final = e.response;
    }
    assert.deepEqual(
      [...new Set(types)],
      [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.incomplete",
      ],
    );
    assert.equal(text, plain.output_text);
    assert.equal(final!.output_text ?? (final!.output[0] as any).content[0].text, plain.output_text);
    assert.equal(final!.usage!.output_tokens, 20);
  });

  test("function tools: a forced call is a function_call item whose arguments match the schema; the result goes back as items", async () => {
    const r = await client.responses.create({
      model: "stories",
      input: [{ role: "user", content: "Weather in Paris?" }],
      tools: [WEATHER],
      tool_choice: "required",
      max_output_tokens: 200,
      temperature: 0,
    });
    assert.equal(r.status, "completed");
    const call = r.output[0] as OpenAI.Responses.ResponseFunctionToolCall;
    assert.equal(call.type, "function_call");
    assert.equal(call.name, "get_weather");
    assert.match(call.call_id, /^call_/);
    const args = z
      .object({ city: z.string().max(12), days: z.number().int().min(1).max(7) })
      .strict()
      .parse(JSON.parse(call.arguments));
    assert.ok(args);

    const next = await client.responses.create({
      model: "stories",
      input: [
        { role: "user", content: "Weather in Paris?" },
        { type: "function_call", call_id: call.call_id, name: call.name, arguments: call.arguments },
        { type: "function_call_output", call_id: call.call_id, output: '{"sky": "clear"}' },
      ],
      tools: [WEATHER],
      max_output_tokens: 8,
      temperature: 0,
    });
    assert.equal(next.output[0]!.type, "message");
    assert.ok(next.usage!.input_tokens > r.usage!.input_tokens, "the call and its output reach the prompt");
  });

  test("a streamed forced call: output_item.added, arguments delta/done, output_item.done", async () => {
    const stream = await client.responses.create({
      model: "stories",
      input: "Weather?",
      tools: [WEATHER],
      tool_choice: { type: "function", name: "get_weather" },
      max_output_tokens: 200,
      temperature: 0.7,
      ...({ seed: 3 } as object), // an llmos extension of the Responses API
      stream: true,
    });
    let args = "";
    let done: OpenAI.Responses.ResponseFunctionToolCall | undefined;
    for await (const e of stream) {
      if (e.type === "response.function_call_arguments.delta") args += e.delta;
      if (e.type === "response.output_item.done") done = e.item as OpenAI.Responses.ResponseFunctionToolCall;
    }
    assert.equal(done!.type, "function_call");
    assert.equal(done!.arguments, args);
    JSON.parse(args);
  });

  test("a forced call cut off by max_output_tokens: incomplete, no partial JSON in the output", async () => {
    const r = await client.responses.create({
      model: "stories",
      input: "Weather?",
      tools: [WEATHER],
      tool_choice: "required",
      max_output_tokens: 5,
      temperature: 0,
    });
    assert.equal(r.status, "incomplete");
    assert.deepEqual(r.output, []);
    assert.equal(r.output_text, "");
  });

  test("text.format json_schema: the output parses with zod", async () => {
    const Pet = z.object({
      name: z.string().min(1).max(10),
      legs: z.number().int().min(0).max(8),
      kind: z.enum(["cat", "dog"]),
    });
    const r = await client.responses.create({
      model: "stories",
      input: "A pet",
      text: { format: { type: "json_schema", name: "pet", schema: z.toJSONSchema(Pet) as any, strict: true } },
      max_output_tokens: 200,
      temperature: 1,
      ...({ seed: 5 } as object),
    });
    assert.equal(r.status, "completed");
    Pet.parse(JSON.parse(r.output_text));
  });

  test("store and previous_response_id: the earlier turn is in the prompt; GET and DELETE; another key gets 404", async () => {
    const first = await client.responses.create({
      model: "stories",
      input: "Tom had a dog.",
      max_output_tokens: 6,
      temperature: 0,
    });
    const second = await client.responses.create({
      model: "stories",
      input: "What did Tom have?",
      previous_response_id: first.id,
      max_output_tokens: 6,
      temperature: 0,
    });
    assert.equal(second.previous_response_id, first.id);
    const alone = await client.responses.create({
      model: "stories",
      input: "What did Tom have?",
      max_output_tokens: 6,
      temperature: 0,
      store: false,
    });
    assert.ok(second.usage!.input_tokens > alone.usage!.input_tokens + first.usage!.output_tokens, "history in prompt");

    const got = await client.responses.retrieve(first.id);
    assert.equal(got.id, first.id);
    assert.equal(got.output_text, first.output_text);

    // Another key: the same 404 as an id that never existed, for GET, DELETE and previous_response_id.
    for (const call of [
      () => other.responses.retrieve(first.id),
      () => other.responses.delete(first.id),
      () =>
        other.responses.create({ model: "stories", input: "x", previous_response_id: first.id, max_output_tokens: 1 }),
      () => client.responses.retrieve("resp_doesnotexist"),
      () => client.responses.retrieve(alone.id),
    ])
      await assert.rejects(call(), (e: any) => e instanceof OpenAI.NotFoundError && e.code === "not_found");

    await client.responses.delete(first.id);
    await assert.rejects(client.responses.retrieve(first.id), OpenAI.NotFoundError);
    const audit = await d.security.audit.query({ action: "response.delete" });
    assert.ok(audit.some((a) => a.result === "ok"));
  });

  test("usage of responses is recorded under the key", async () => {
    await d.security.flush();
    const rows = await d.security.usage({});
    const a = rows.filter((r) => r.keyId !== null && r.model.startsWith("stories"));
    assert.ok(a.reduce((n, r) => n + r.completionTokens, 0) > 30, JSON.stringify(rows));
  });

  test("bad input is a 400 naming the field; unsupported items and tools too", async () => {
    for (const [body, param] of [
      [{ input: [{ type: "input_image", image_url: "x" }] }, "input[0]"],
      [{ input: [{ role: "user", content: [{ type: "input_image" }] }] }, "input[0].content[0]"],
      [{ input: "x", tools: [{ type: "web_search" }] }, "tools[0]"],
      [{ input: "x", background: true }, "background"],
      [
        {
          input: "x",
          text: { format: { type: "json_schema", name: "x", schema: { type: "string", pattern: "(a)\\1" } } },
        },
        "text.format.schema",
      ],
    ] as const) {
      const r = await api(
        d,
        "POST",
        "/v1/responses",
        { model: "stories", ...body },
        { authorization: `Bearer ${keyA}` },
      );
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.error.param, param, r.text);
    }
    // Text that reaches the prompt renderers has the field limits of the other routes.
    const long = await api(
      d,
      "POST",
      "/v1/responses",
      { model: "stories", input: "x", instructions: "i".repeat(1024 * 1024 + 1) },
      { authorization: `Bearer ${keyA}` },
    );
    assert.equal(long.status, 400, long.text);
    assert.match(long.json.error.message, /instructions/);
  });
});
