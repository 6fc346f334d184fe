import { Type, type Static } from "@sinclair/typebox";
import { FIELD_LIMITS } from "../field-limits.js";

/**
 * Ollama request schemas. Like Ollama, unknown top-level fields are tolerated (clients send newer ones); known
 * fields are validated strictly. `options` is checked field by field in options.ts (unknown options are refused).
 */
const Model = Type.String({ minLength: 1, maxLength: 300, description: "Model name, `name[:tag]`" });
const KeepAlive = Type.Union([Type.Number(), Type.String({ maxLength: 32 })], {
  description: "Seconds, a duration like `5m`, 0 to unload after the request, negative to keep forever",
});
const Format = Type.Union(
  [
    Type.Literal(""),
    Type.Literal("json"),
    Type.Object({}, { additionalProperties: true, description: "A JSON schema" }),
    Type.Null(),
  ],
  {
    description: '`"json"` for any JSON, or a JSON schema the output must match (enforced by a grammar)',
  },
);
const Options = Type.Object(
  {},
  {
    additionalProperties: true,
    description: "Model options (temperature, top_k, num_predict, ...); see docs/api-ollama.md",
  },
);
const Images = Type.Array(Type.String(), {
  description: "Not supported: llmos serves text models (rejected when non-empty)",
});

export const OllamaToolSchema = Type.Object(
  {
    type: Type.Literal("function"),
    function: Type.Object(
      {
        name: Type.String({ minLength: 1, maxLength: FIELD_LIMITS.toolName }),
        description: Type.Optional(Type.String({ maxLength: FIELD_LIMITS.toolDescription })),
        parameters: Type.Optional(Type.Object({}, { additionalProperties: true })),
      },
      { additionalProperties: true },
    ),
  },
  { additionalProperties: true },
);

export const OllamaToolCall = Type.Object(
  {
    function: Type.Object(
      {
        name: Type.String({ minLength: 1, maxLength: FIELD_LIMITS.toolName }),
        arguments: Type.Union([
          Type.Object({}, { additionalProperties: true }),
          Type.String({ maxLength: FIELD_LIMITS.toolArguments }),
        ]),
      },
      { additionalProperties: true },
    ),
  },
  { additionalProperties: true },
);

export const OllamaMessage = Type.Object(
  {
    role: Type.Union([Type.Literal("system"), Type.Literal("user"), Type.Literal("assistant"), Type.Literal("tool")]),
    content: Type.Optional(Type.String({ maxLength: FIELD_LIMITS.content })),
    images: Type.Optional(Type.Union([Images, Type.Null()])),
    tool_calls: Type.Optional(Type.Union([Type.Array(OllamaToolCall, { maxItems: 128 }), Type.Null()])),
    tool_name: Type.Optional(Type.String({ maxLength: 256 })),
    thinking: Type.Optional(Type.String({ maxLength: FIELD_LIMITS.content })),
  },
  { additionalProperties: true },
);
export type OllamaMessage = Static<typeof OllamaMessage>;

const Common = {
  model: Model,
  format: Type.Optional(Format),
  options: Type.Optional(Type.Union([Options, Type.Null()])),
  keep_alive: Type.Optional(Type.Union([KeepAlive, Type.Null()])),
  stream: Type.Optional(
    Type.Union([Type.Boolean({ description: "Stream NDJSON chunks (default true)" }), Type.Null()]),
  ),
  think: Type.Optional(
    Type.Union([Type.Boolean(), Type.String(), Type.Null()], { description: "Not supported (rejected when set)" }),
  ),
  cache_prompt: Type.Optional(
    Type.Boolean({ description: "llmos: false evaluates the whole prompt instead of reusing a cached prefix" }),
  ),
};

export const GenerateBody = Type.Object(
  {
    ...Common,
    prompt: Type.Optional(
      Type.String({
        maxLength: FIELD_LIMITS.content,
        description: "Empty: load the model (and with keep_alive 0, unload it)",
      }),
    ),
    suffix: Type.Optional(
      Type.String({
        maxLength: FIELD_LIMITS.content,
        description: "Not supported unless empty (fill-in-the-middle needs model support)",
      }),
    ),
    system: Type.Optional(Type.String({ maxLength: FIELD_LIMITS.system })),
    template: Type.Optional(
      Type.String({
        maxLength: FIELD_LIMITS.template,
        description: "A Go-template prompt template (subset: .System, .Prompt, .Response, if/else/end)",
      }),
    ),
    raw: Type.Optional(Type.Boolean({ description: "Send the prompt as is, without the chat template" })),
    context: Type.Optional(
      Type.Union([Type.Array(Type.Integer({ minimum: 0, maximum: 2147483647 }), { maxItems: 1 << 20 }), Type.Null()], {
        description: "Token ids returned by an earlier response, placed before the prompt",
      }),
    ),
    images: Type.Optional(Type.Union([Images, Type.Null()])),
  },
  { additionalProperties: true },
);
export type GenerateBody = Static<typeof GenerateBody>;

export const ChatBody = Type.Object(
  {
    ...Common,
    messages: Type.Optional(
      Type.Union([Type.Array(OllamaMessage), Type.Null()], { description: "The conversation; empty loads the model" }),
    ),
    tools: Type.Optional(Type.Union([Type.Array(OllamaToolSchema, { maxItems: 128 }), Type.Null()])),
  },
  { additionalProperties: true },
);
export type ChatBody = Static<typeof ChatBody>;

export const EmbedBody = Type.Object(
  {
    model: Model,
    input: Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: 2048 })]),
    truncate: Type.Optional(
      Type.Boolean({ description: "Cut inputs longer than the context (default true); false: error instead" }),
    ),
    dimensions: Type.Optional(Type.Integer({ minimum: 1, description: "Keep only the first N dimensions" })),
    options: Type.Optional(Type.Union([Options, Type.Null()])),
    keep_alive: Type.Optional(Type.Union([KeepAlive, Type.Null()])),
  },
  { additionalProperties: true },
);
export type EmbedBody = Static<typeof EmbedBody>;

export const EmbeddingsBody = Type.Object(
  {
    model: Model,
    prompt: Type.String(),
    options: Type.Optional(Type.Union([Options, Type.Null()])),
    keep_alive: Type.Optional(Type.Union([KeepAlive, Type.Null()])),
  },
  { additionalProperties: true },
);
export type EmbeddingsBody = Static<typeof EmbeddingsBody>;
