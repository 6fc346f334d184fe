import { Type, type Static, type TSchema } from "@sinclair/typebox";
import type { FastifyPluginAsync } from "fastify";
import { LlmosError } from "../../errors.js";
import type { HttpDeps } from "../deps.js";
import { OllamaToolSchema } from "../ollama/schemas.js";
import { ChatMessageSchema } from "../openai/schemas.js";
import { chatMessages } from "../openai/translate.js";
import { planTools, templateRendersTools, withToolInstructions } from "../openai/tools.js";
import { clientGone } from "../request-context.js";

const Model = Type.String({ minLength: 1, maxLength: 300, description: "Model name, `name[:tag]`" });

const TokenizeBody = Type.Object(
  {
    model: Model,
    content: Type.String({ description: "Text to tokenize" }),
    add_special: Type.Optional(Type.Boolean({ description: "Prepend BOS when the model uses one (default false)" })),
    parse_special: Type.Optional(
      Type.Boolean({ description: "Turn special-token text such as `<s>` into its token (default false)" }),
    ),
  },
  { additionalProperties: false },
);

const DetokenizeBody = Type.Object(
  {
    model: Model,
    tokens: Type.Array(Type.Integer({ minimum: 0, maximum: 2147483647 }), {
      maxItems: 1 << 20,
      description: "Token ids",
    }),
  },
  { additionalProperties: false },
);

const ApplyTemplateBody = Type.Object(
  {
    model: Model,
    messages: Type.Array(ChatMessageSchema, { minItems: 1 }),
    tools: Type.Optional(Type.Array(OllamaToolSchema, { maxItems: 128 })),
  },
  { additionalProperties: false },
);

/** Response shapes of the utility routes, for the OpenAPI document. */
export const UTILITY_RESPONSE_DOCS: Readonly<Record<string, TSchema>> = {
  "POST /api/tokenize": Type.Object({ model: Type.String(), tokens: Type.Array(Type.Integer()) }),
  "POST /api/detokenize": Type.Object({ model: Type.String(), content: Type.String() }),
  "POST /api/apply-template": Type.Object({
    model: Type.String(),
    prompt: Type.String({ description: "The text the model will see" }),
    template: Type.Union([Type.Literal("gguf"), Type.Literal("definition"), Type.Literal("fallback")], {
      description: "Which template rendered it",
    }),
    stop: Type.Array(Type.String(), { description: "Stop strings the format implies" }),
  }),
};

/** Developer utilities: tokenize, detokenize and render a chat into the prompt the model sees. */
export function utilityRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    const tags = ["utility"];

    app.post<{ Body: Static<typeof TokenizeBody> }>(
      "/api/tokenize",
      { schema: { body: TokenizeBody, summary: "Text to token ids", tags }, config: { scope: "inference" } },
      async (request, reply) => {
        const { model, content } = request.body;
        const r = await deps.inference.tokenize(model, content, {
          addBos: request.body.add_special === true,
          parseSpecial: request.body.parse_special === true,
          signal: clientGone(request, reply),
        });
        return { model: r.model, tokens: r.tokens };
      },
    );

    app.post<{ Body: Static<typeof DetokenizeBody> }>(
      "/api/detokenize",
      { schema: { body: DetokenizeBody, summary: "Token ids to text", tags }, config: { scope: "inference" } },
      async (request, reply) => {
        const { model, tokens } = request.body;
        const record = await deps.inference.model(model);
        const vocab = record.summary.vocabSize;
        const bad = vocab ? tokens.findIndex((t) => t >= vocab) : -1;
        if (bad !== -1) {
          throw new LlmosError(
            "invalid_request",
            `tokens[${bad}] = ${tokens[bad]} is outside the model's vocabulary of ${vocab}`,
            { param: `tokens[${bad}]` },
          );
        }
        const r = await deps.inference.detokenize(model, tokens, { signal: clientGone(request, reply) });
        return { model: r.model, content: r.text };
      },
    );

    app.post<{ Body: Static<typeof ApplyTemplateBody> }>(
      "/api/apply-template",
      {
        schema: { body: ApplyTemplateBody, summary: "Render a chat into the prompt the model will see", tags },
        config: { scope: "inference" },
      },
      async (request) => {
        const body = request.body;
        let messages = chatMessages({ model: body.model, messages: body.messages }, deps.config.limits.messages);
        const plan = planTools(body.tools as never, "auto");
        const record = await deps.inference.model(body.model);
        let tools;
        if (plan) {
          // The same choice the chat routes make: the template renders tools when it can, else a system message.
          if (!record.definition.template && templateRendersTools(record.summary.chatTemplate)) tools = plan.tools;
          else messages = withToolInstructions(messages, plan.tools);
        }
        const r = await deps.inference.applyTemplate(body.model, messages, tools);
        return { model: r.model, prompt: r.prompt, template: r.source, stop: r.stop };
      },
    );
  };
}
