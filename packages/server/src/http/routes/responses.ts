import type { FastifyPluginAsync } from "fastify";
import { LlmosError } from "../../errors.js";
import type { ChatMessage } from "../../inference/chat-template.js";
import type { TextRequest } from "../../inference/inference-service.js";
import type { SamplingInput } from "../../inference/sampling.js";
import type { StoredResponses } from "../../security/index.js";
import type { HttpDeps } from "../deps.js";
import { sendGeneration } from "../generation-response.js";
import { checkSchemaLimits, checkToolLimits } from "../input-limits.js";
import { planTools } from "../openai/tools.js";
import { clientGone, keyIdOf, originOf, tenantOf } from "../request-context.js";
import { CreateResponseBody } from "../responses/schemas.js";
import {
  chatToolChoice,
  chatTools,
  grammarFromTextFormat,
  inputMessages,
  rejectUnsupportedResponseFields,
  responseItemId,
} from "../responses/translate.js";
import { responsesWire, type ResponseEcho } from "../responses/wire.js";
import { applyToolPrompt } from "./openai.js";
import { keepAliveMs } from "./runtime.js";

/**
 * OpenAI's Responses API: `POST /v1/responses` (a third wire format over the same generation pipeline as chat
 * completions), `GET` and `DELETE /v1/responses/{id}`. Responses are stored unless `store: false`, owned by the
 * key that created them (another key gets 404), for `previous_response_id` and `GET`, until they expire
 * (LLMOS_RESPONSES_TTL). Usage is recorded by the inference layer like any generation.
 */
export function responsesRoutes(deps: HttpDeps, stored: StoredResponses): FastifyPluginAsync {
  return async (app) => {
    const errorStyle = "openai" as const;

    app.post<{ Body: CreateResponseBody }>(
      "/v1/responses",
      {
        schema: { body: CreateResponseBody, summary: "Create a response (OpenAI Responses API)", tags: ["openai"] },
        config: { scope: "inference", errorStyle },
      },
      async (request, reply) => {
        const body = request.body;
        rejectUnsupportedResponseFields(body);
        const keyId = keyIdOf(request);
        const previous = body.previous_response_id ? await stored.get(body.previous_response_id, keyId) : undefined;
        // The earlier turns, without their instructions (as OpenAI does: instructions are not carried over).
        const conversation = [
          ...((previous?.conversation as ChatMessage[] | undefined) ?? []),
          ...inputMessages(body.input),
        ];
        if (conversation.length > deps.config.limits.messages)
          throw new LlmosError(
            "invalid_request",
            `at most ${deps.config.limits.messages} messages are allowed, got ${conversation.length}`,
            { param: "input" },
          );
        const tools = chatTools(body.tools);
        checkToolLimits(tools, deps.config.limits);
        const format = body.text?.format;
        if (format?.type === "json_schema") checkSchemaLimits(format.schema, "text.format.schema", deps.config.limits);
        const options: SamplingInput = {};
        if (body.max_output_tokens != null) options.num_predict = body.max_output_tokens;
        if (body.temperature != null) options.temperature = body.temperature;
        if (body.top_p != null) options.top_p = body.top_p;
        if (body.seed != null) options.seed = body.seed;
        const req: TextRequest = {
          model: body.model,
          messages: body.instructions
            ? [{ role: "system", content: body.instructions }, ...conversation]
            : conversation,
          options,
          tenant: tenantOf(request, body.user),
          keyId,
          signal: clientGone(request, reply),
        };
        const ka = keepAliveMs(body.keep_alive);
        if (ka !== undefined) req.keepAliveMs = ka;
        if (body.cache_prompt === false) req.cachePrompt = false;
        const grammar = grammarFromTextFormat(body.text);
        if (grammar) req.grammar = grammar;
        const plan = planTools(tools, chatToolChoice(body.tool_choice));
        if (plan) {
          if (plan.grammar && grammar)
            throw new LlmosError("invalid_request", `text.format cannot be combined with a forced tool_choice`, {
              param: "text.format",
            });
          if (plan.grammar) req.grammar = plan.grammar;
          await applyToolPrompt(deps, req, plan);
        }
        const id = responseItemId("resp");
        req.origin = originOf(request, id);
        const run = await deps.inference.generate(req, 1);
        const store = body.store !== false;
        const echo: ResponseEcho = {
          instructions: body.instructions ?? null,
          max_output_tokens: body.max_output_tokens ?? null,
          temperature: body.temperature ?? null,
          top_p: body.top_p ?? null,
          tools: body.tools ?? [],
          tool_choice: body.tool_choice ?? "auto",
          text: { format: format ?? { type: "text" } },
          previous_response_id: body.previous_response_id ?? null,
          store,
          metadata: body.metadata ?? {},
          user: body.user ?? null,
          parallel_tool_calls: body.parallel_tool_calls ?? true,
          truncation: body.truncation ?? "disabled",
        };
        const wire = responsesWire({
          id,
          model: run.model,
          echo,
          completed: async (response, output) => {
            if (store)
              await stored.save({ id, keyId, model: run.model, response, conversation: [...conversation, ...output] });
          },
        });
        return sendGeneration(request, reply, run, wire, { stream: body.stream === true, tools: plan });
      },
    );

    app.get<{ Params: { id: string } }>(
      "/v1/responses/:id",
      {
        config: { scope: "inference", errorStyle },
        schema: { summary: "Get a stored response (OpenAI Responses API)", tags: ["openai"] },
      },
      async (request) => (await stored.get(request.params.id, keyIdOf(request))).response,
    );

    app.delete<{ Params: { id: string } }>(
      "/v1/responses/:id",
      {
        config: { scope: "inference", errorStyle, audit: "response.delete" },
        schema: { summary: "Delete a stored response (OpenAI Responses API)", tags: ["openai"] },
      },
      async (request) => {
        await stored.delete(request.params.id, keyIdOf(request));
        return { id: request.params.id, object: "response", deleted: true };
      },
    );
  };
}
