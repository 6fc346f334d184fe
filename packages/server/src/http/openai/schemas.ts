import { Type, type Static } from "@sinclair/typebox";
import { FIELD_LIMITS } from "../field-limits.js";

/** OpenAI request schemas. Unknown fields are tolerated (clients add new ones); known unsupported ones are rejected. */
const Stop = Type.Union([
  Type.String({ maxLength: FIELD_LIMITS.stop }),
  Type.Array(Type.String({ maxLength: FIELD_LIMITS.stop }), { maxItems: 64 }),
  Type.Null(),
]);

const Sampling = {
  max_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
  max_completion_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
  temperature: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 2 }), Type.Null()])),
  top_p: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()])),
  top_k: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.Null()])),
  min_p: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()])),
  seed: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
  stop: Type.Optional(Stop),
  presence_penalty: Type.Optional(Type.Union([Type.Number({ minimum: -2, maximum: 2 }), Type.Null()])),
  frequency_penalty: Type.Optional(Type.Union([Type.Number({ minimum: -2, maximum: 2 }), Type.Null()])),
  repeat_penalty: Type.Optional(Type.Number({ minimum: 0 })),
  n: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 16 }), Type.Null()])),
  stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  stream_options: Type.Optional(
    Type.Union([Type.Object({ include_usage: Type.Optional(Type.Boolean()) }), Type.Null()]),
  ),
  user: Type.Optional(Type.String({ maxLength: 256 })),
  logprobs: Type.Optional(Type.Union([Type.Boolean(), Type.Integer({ minimum: 0, maximum: 20 }), Type.Null()])),
  top_logprobs: Type.Optional(Type.Union([Type.Integer({ minimum: 0, maximum: 20 }), Type.Null()])),
  ignore_eos: Type.Optional(
    Type.Boolean({ description: "Keep generating past end-of-generation tokens (benchmarks), like llama-server" }),
  ),
  keep_alive: Type.Optional(Type.Union([Type.Number(), Type.String({ maxLength: 32 })])),
  cache_prompt: Type.Optional(
    Type.Boolean({
      description:
        "false: evaluate the whole prompt instead of reusing a cached prefix (default true), like llama-server",
    }),
  ),
  priority: Type.Optional(Type.Union([Type.Literal("interactive"), Type.Literal("batch")])),
};

const ContentPart = Type.Object(
  { type: Type.String({ maxLength: 64 }), text: Type.Optional(Type.String({ maxLength: FIELD_LIMITS.content })) },
  { additionalProperties: true },
);

export const ChatMessageSchema = Type.Object(
  {
    role: Type.Union([
      Type.Literal("system"),
      Type.Literal("developer"),
      Type.Literal("user"),
      Type.Literal("assistant"),
      Type.Literal("tool"),
    ]),
    content: Type.Optional(
      Type.Union([
        Type.String({ maxLength: FIELD_LIMITS.content }),
        Type.Array(ContentPart, { maxItems: 256 }),
        Type.Null(),
      ]),
    ),
    name: Type.Optional(Type.String({ maxLength: 256 })),
    tool_call_id: Type.Optional(Type.String({ maxLength: 256 })),
    tool_calls: Type.Optional(
      Type.Array(
        Type.Object({
          id: Type.String({ maxLength: 256 }),
          type: Type.Literal("function"),
          function: Type.Object({
            name: Type.String({ maxLength: 256 }),
            arguments: Type.String({ maxLength: FIELD_LIMITS.toolArguments }),
          }),
        }),
        { maxItems: 128 },
      ),
    ),
  },
  { additionalProperties: true },
);

export const ToolSchema = Type.Object({
  type: Type.Literal("function"),
  function: Type.Object({
    name: Type.String({ minLength: 1, maxLength: FIELD_LIMITS.toolName, pattern: "^[A-Za-z0-9_-]+$" }),
    description: Type.Optional(Type.String({ maxLength: FIELD_LIMITS.toolDescription })),
    parameters: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    strict: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  }),
});

export const ResponseFormatSchema = Type.Union([
  Type.Object({ type: Type.Literal("text") }),
  Type.Object({ type: Type.Literal("json_object") }),
  Type.Object({
    type: Type.Literal("json_schema"),
    json_schema: Type.Object({
      name: Type.String({ minLength: 1, maxLength: FIELD_LIMITS.toolName }),
      description: Type.Optional(Type.String({ maxLength: FIELD_LIMITS.toolDescription })),
      schema: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
      strict: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
    }),
  }),
]);

export const ChatCompletionBody = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 300 }),
    messages: Type.Array(ChatMessageSchema, { minItems: 1 }),
    tools: Type.Optional(Type.Array(ToolSchema)),
    tool_choice: Type.Optional(
      Type.Union([
        Type.Literal("none"),
        Type.Literal("auto"),
        Type.Literal("required"),
        Type.Object({ type: Type.Literal("function"), function: Type.Object({ name: Type.String() }) }),
      ]),
    ),
    parallel_tool_calls: Type.Optional(Type.Boolean()),
    response_format: Type.Optional(ResponseFormatSchema),
    ...Sampling,
  },
  { additionalProperties: true },
);
export type ChatCompletionBody = Static<typeof ChatCompletionBody>;

export const CompletionBody = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 300 }),
    prompt: Type.Union([
      Type.String({ maxLength: FIELD_LIMITS.content }),
      Type.Array(Type.String({ maxLength: FIELD_LIMITS.content }), { minItems: 1, maxItems: 1 }),
      Type.Array(Type.Integer({ minimum: 0, maximum: 2147483647 }), { minItems: 1 }),
    ]),
    suffix: Type.Optional(Type.Union([Type.String({ maxLength: FIELD_LIMITS.content }), Type.Null()])),
    echo: Type.Optional(Type.Boolean()),
    ...Sampling,
  },
  { additionalProperties: true },
);
export type CompletionBody = Static<typeof CompletionBody>;

export const EmbeddingBody = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 300 }),
    input: Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1, maxItems: 2048 })]),
    encoding_format: Type.Optional(Type.Union([Type.Literal("float"), Type.Literal("base64")])),
    dimensions: Type.Optional(Type.Integer({ minimum: 1 })),
    user: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: true },
);
export type EmbeddingBody = Static<typeof EmbeddingBody>;

/** Fields of the OpenAI API that llmos does not implement: rejected with a clear error instead of ignored. */
export const UNSUPPORTED_FIELDS = [
  "logit_bias",
  "audio",
  "modalities",
  "prediction",
  "best_of",
  "functions",
  "function_call",
] as const;
