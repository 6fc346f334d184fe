import { Type, type Static } from "@sinclair/typebox";
import { FIELD_LIMITS } from "../field-limits.js";

/**
 * The request of OpenAI's Responses API (`POST /v1/responses`) as llmos takes it. Unknown fields are tolerated
 * (clients add new ones); those llmos cannot honour are refused in translate.ts.
 */
const TextPart = Type.Object(
  { type: Type.String({ maxLength: 64 }), text: Type.Optional(Type.String({ maxLength: FIELD_LIMITS.content })) },
  { additionalProperties: true },
);

const MessageItem = Type.Object(
  {
    type: Type.Optional(Type.Literal("message")),
    role: Type.Union([
      Type.Literal("user"),
      Type.Literal("assistant"),
      Type.Literal("system"),
      Type.Literal("developer"),
    ]),
    content: Type.Union([Type.String({ maxLength: FIELD_LIMITS.content }), Type.Array(TextPart, { maxItems: 256 })]),
    id: Type.Optional(Type.String({ maxLength: 256 })),
    status: Type.Optional(Type.String({ maxLength: 32 })),
  },
  { additionalProperties: true },
);

const FunctionCallItem = Type.Object(
  {
    type: Type.Literal("function_call"),
    call_id: Type.String({ minLength: 1, maxLength: 256 }),
    name: Type.String({ minLength: 1, maxLength: FIELD_LIMITS.toolName }),
    arguments: Type.String({ maxLength: FIELD_LIMITS.toolArguments }),
    id: Type.Optional(Type.String({ maxLength: 256 })),
    status: Type.Optional(Type.String({ maxLength: 32 })),
  },
  { additionalProperties: true },
);

const FunctionCallOutputItem = Type.Object(
  {
    type: Type.Literal("function_call_output"),
    call_id: Type.String({ minLength: 1, maxLength: 256 }),
    output: Type.Union([Type.String({ maxLength: FIELD_LIMITS.content }), Type.Array(TextPart, { maxItems: 256 })]),
    id: Type.Optional(Type.String({ maxLength: 256 })),
    status: Type.Optional(Type.String({ maxLength: 32 })),
  },
  { additionalProperties: true },
);

/** Any other item type (reasoning, item_reference, images...): refused with a 400 naming it. */
const OtherItem = Type.Object({ type: Type.String({ maxLength: 64 }) }, { additionalProperties: true });

export const ResponseInputItem = Type.Union([MessageItem, FunctionCallItem, FunctionCallOutputItem, OtherItem]);
export type ResponseInputItem = Static<typeof ResponseInputItem>;

export const ResponseTool = Type.Object(
  {
    type: Type.String({ maxLength: 64 }),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: FIELD_LIMITS.toolName })),
    description: Type.Optional(Type.Union([Type.String({ maxLength: FIELD_LIMITS.toolDescription }), Type.Null()])),
    parameters: Type.Optional(Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()])),
    strict: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  },
  { additionalProperties: true },
);
export type ResponseTool = Static<typeof ResponseTool>;

export const ResponseTextFormat = Type.Union([
  Type.Object({ type: Type.Literal("text") }),
  Type.Object({ type: Type.Literal("json_object") }),
  Type.Object(
    {
      type: Type.Literal("json_schema"),
      name: Type.String({ minLength: 1, maxLength: FIELD_LIMITS.toolName }),
      schema: Type.Record(Type.String(), Type.Unknown()),
      description: Type.Optional(Type.String({ maxLength: FIELD_LIMITS.toolDescription })),
      strict: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
    },
    { additionalProperties: true },
  ),
]);

export const CreateResponseBody = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 300 }),
    input: Type.Union([
      Type.String({ maxLength: FIELD_LIMITS.content }),
      Type.Array(ResponseInputItem, { maxItems: 1024 }),
    ]),
    instructions: Type.Optional(Type.Union([Type.String({ maxLength: FIELD_LIMITS.system }), Type.Null()])),
    tools: Type.Optional(Type.Array(ResponseTool)),
    tool_choice: Type.Optional(
      Type.Union([
        Type.Literal("none"),
        Type.Literal("auto"),
        Type.Literal("required"),
        Type.Object({ type: Type.Literal("function"), name: Type.String() }, { additionalProperties: true }),
      ]),
    ),
    parallel_tool_calls: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
    text: Type.Optional(Type.Object({ format: Type.Optional(ResponseTextFormat) }, { additionalProperties: true })),
    max_output_tokens: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
    temperature: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 2 }), Type.Null()])),
    top_p: Type.Optional(Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()])),
    seed: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
    store: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
    previous_response_id: Type.Optional(Type.Union([Type.String({ maxLength: 256 }), Type.Null()])),
    stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
    metadata: Type.Optional(
      Type.Union([Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 512 })), Type.Null()]),
    ),
    user: Type.Optional(Type.String({ maxLength: 256 })),
    truncation: Type.Optional(Type.Union([Type.Literal("disabled"), Type.Literal("auto"), Type.Null()])),
    keep_alive: Type.Optional(Type.Union([Type.Number(), Type.String({ maxLength: 32 })])),
    cache_prompt: Type.Optional(
      Type.Boolean({
        description:
          "false: evaluate the whole prompt instead of reusing a cached prefix (default true), like llama-server",
      }),
    ),
  },
  { additionalProperties: true },
);
export type CreateResponseBody = Static<typeof CreateResponseBody>;

/** Fields of the Responses API llmos does not implement: refused instead of ignored. */
export const UNSUPPORTED_RESPONSE_FIELDS = ["background", "conversation", "prompt", "reasoning"] as const;
