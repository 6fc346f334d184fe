import { Type, type TSchema } from "@sinclair/typebox";

/**
 * Response shapes of the Ollama routes, for the OpenAPI document only (routes do not serialise through them, so a
 * field added to a response can never be dropped by a stale schema).
 */
const Timings = {
  total_duration: Type.Integer({ description: "Nanoseconds from arrival to the end" }),
  load_duration: Type.Integer({ description: "Nanoseconds spent loading the model (0 when loaded)" }),
  prompt_eval_count: Type.Integer({ description: "Prompt tokens (cached or not, as Ollama counts them)" }),
  prompt_eval_cached_count: Type.Optional(
    Type.Integer({ description: "llmos: prompt tokens whose KV cells came from the prompt cache (not evaluated)" }),
  ),
  prompt_eval_duration: Type.Integer({ description: "Nanoseconds to the first generated token" }),
  eval_count: Type.Integer({ description: "Generated tokens" }),
  eval_duration: Type.Integer({ description: "Nanoseconds spent generating" }),
};
const Final = {
  model: Type.String(),
  created_at: Type.String({ format: "date-time" }),
  done: Type.Boolean({ description: "false on streamed chunks, true on the last object" }),
  done_reason: Type.Optional(
    Type.Union([Type.Literal("stop"), Type.Literal("length"), Type.Literal("load"), Type.Literal("unload")]),
  ),
  ...Timings,
};
const ToolCall = Type.Object({
  function: Type.Object({ name: Type.String(), arguments: Type.Object({}, { additionalProperties: true }) }),
});

const STREAM_NOTE =
  "With `stream` (default true) the body is NDJSON: chunks with `done: false`, then this object with `done: true`.";

export const GenerateResponse = Type.Object(
  {
    ...Final,
    response: Type.String(),
    context: Type.Optional(Type.Array(Type.Integer(), { description: "Prompt + response tokens (not in raw mode)" })),
  },
  { description: STREAM_NOTE },
);

export const ChatResponse = Type.Object(
  {
    ...Final,
    message: Type.Object({
      role: Type.Literal("assistant"),
      content: Type.String(),
      tool_calls: Type.Optional(Type.Array(ToolCall)),
    }),
  },
  { description: STREAM_NOTE },
);

export const EmbedResponse = Type.Object({
  model: Type.String(),
  embeddings: Type.Array(Type.Array(Type.Number()), { description: "L2-normalised vectors" }),
  total_duration: Type.Integer(),
  load_duration: Type.Integer(),
  prompt_eval_count: Type.Integer(),
});

export const EmbeddingsResponse = Type.Object({ embedding: Type.Array(Type.Number()) });

export const VersionResponse = Type.Object({ version: Type.String() });

/** `METHOD path` -> response schema, for the OpenAPI document. */
export const OLLAMA_RESPONSE_DOCS: Readonly<Record<string, TSchema>> = {
  "POST /api/generate": GenerateResponse,
  "POST /api/chat": ChatResponse,
  "POST /api/embed": EmbedResponse,
  "POST /api/embeddings": EmbeddingsResponse,
  "GET /api/version": VersionResponse,
};
