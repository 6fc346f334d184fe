import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { TextRequest } from "../../inference/inference-service.js";
import { callerMaySee } from "../auth/index.js";
import type { HttpDeps } from "../deps.js";
import { sendGeneration } from "../generation-response.js";
import { checkSchemaLimits, checkToolLimits } from "../input-limits.js";
import { LlmosError } from "../../errors.js";
import { ChatCompletionBody, CompletionBody, EmbeddingBody } from "../openai/schemas.js";
import {
  chatMessages,
  completionId,
  embeddingBase64,
  grammarFromResponseFormat,
  logprobsCount,
  rejectUnsupported,
  samplingFromOpenAI,
} from "../openai/translate.js";
import { planTools, templateRendersTools, withToolInstructions, type ToolPlan } from "../openai/tools.js";
import { openaiWire } from "../openai/wire.js";
import { clientGone, keyIdOf, originOf, tenantOf } from "../request-context.js";
import { keepAliveMs } from "./runtime.js";

/** The OpenAI-compatible API: `/v1/models`, `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`. */
export function openaiRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    const errorStyle = "openai" as const;

    app.get(
      "/v1/models",
      { config: { scope: "models:read", errorStyle }, schema: { summary: "List models (OpenAI)", tags: ["openai"] } },
      async (request) => {
        const models = (await deps.store.list()).filter((m) => callerMaySee(request, m.name));
        return {
          object: "list",
          data: models.map((m) => ({
            id: m.name,
            object: "model",
            created: Math.floor(Date.parse(m.modifiedAt) / 1000),
            owned_by: "llmos",
          })),
        };
      },
    );

    app.get<{ Params: { model: string } }>(
      "/v1/models/:model",
      { config: { scope: "models:read", errorStyle }, schema: { summary: "Get a model (OpenAI)", tags: ["openai"] } },
      async (request) => {
        const m = await deps.store.get(request.params.model);
        return { id: m.name, object: "model", created: Math.floor(Date.parse(m.modifiedAt) / 1000), owned_by: "llmos" };
      },
    );

    app.post<{ Body: ChatCompletionBody }>(
      "/v1/chat/completions",
      {
        schema: { body: ChatCompletionBody, summary: "Chat completion (OpenAI)", tags: ["openai"] },
        config: { scope: "inference", errorStyle },
      },
      async (request, reply) => {
        const body = request.body;
        rejectUnsupported(body);
        const base = baseRequest(deps, request, reply, body);
        const req: TextRequest = { ...base, messages: chatMessages(body, deps.config.limits.messages) };
        checkToolLimits(body.tools, deps.config.limits);
        if (body.response_format?.type === "json_schema")
          checkSchemaLimits(
            body.response_format.json_schema.schema,
            "response_format.json_schema.schema",
            deps.config.limits,
          );
        const grammar = grammarFromResponseFormat(body.response_format);
        if (grammar) req.grammar = grammar;
        const plan = planTools(body.tools, body.tool_choice);
        if (plan) {
          if (plan.grammar && grammar)
            throw new LlmosError("invalid_request", `response_format cannot be combined with a forced tool_choice`, {
              param: "response_format",
            });
          if (plan.grammar) req.grammar = plan.grammar;
          await applyToolPrompt(deps, req, plan);
        }
        const lp = logprobsCount(body, true);
        if (lp !== undefined) req.logprobs = lp;
        return generate(deps, request, reply, req, { ...wireOptions(body, "chat"), tools: plan });
      },
    );

    app.post<{ Body: CompletionBody }>(
      "/v1/completions",
      {
        schema: { body: CompletionBody, summary: "Text completion (OpenAI)", tags: ["openai"] },
        config: { scope: "inference", errorStyle },
      },
      async (request, reply) => {
        const body = request.body;
        rejectUnsupported(body);
        const prompt = Array.isArray(body.prompt)
          ? typeof body.prompt[0] === "string"
            ? (body.prompt[0] as string)
            : (body.prompt as number[])
          : body.prompt;
        const req: TextRequest = { ...baseRequest(deps, request, reply, body), prompt, raw: true };
        const lp = logprobsCount(body, false);
        if (lp !== undefined) req.logprobs = lp;
        return generate(deps, request, reply, req, wireOptions(body, "completion"));
      },
    );

    app.post<{ Body: EmbeddingBody }>(
      "/v1/embeddings",
      {
        schema: { body: EmbeddingBody, summary: "Embeddings (OpenAI)", tags: ["openai"] },
        config: { scope: "inference", errorStyle },
      },
      async (request, reply) => {
        const body = request.body;
        const inputs = Array.isArray(body.input) ? body.input : [body.input];
        const result = await deps.inference.embed(body.model, inputs, {
          signal: clientGone(request, reply),
          tenant: tenantOf(request, body.user),
          origin: originOf(request),
          keyId: keyIdOf(request),
        });
        return {
          object: "list",
          model: result.model,
          data: result.vectors.map((v, index) => ({
            object: "embedding",
            index,
            embedding:
              body.encoding_format === "base64"
                ? embeddingBase64(body.dimensions ? v.slice(0, body.dimensions) : v)
                : body.dimensions
                  ? v.slice(0, body.dimensions)
                  : v,
          })),
          usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
        };
      },
    );
  };
}

/** Shows the tools to the model: through its chat template when it renders `tools`, else in a system message. */
export async function applyToolPrompt(deps: HttpDeps, req: TextRequest, plan: ToolPlan): Promise<void> {
  const record = await deps.inference.model(req.model);
  if (!record.definition.template && templateRendersTools(record.summary.chatTemplate)) req.tools = plan.tools;
  else req.messages = withToolInstructions(req.messages ?? [], plan.tools);
}

function baseRequest(
  deps: HttpDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  body: ChatCompletionBody | CompletionBody,
): TextRequest {
  const req: TextRequest = {
    model: body.model,
    options: samplingFromOpenAI(body, deps.config.limits.stopSequences),
    tenant: tenantOf(request, body.user),
    keyId: keyIdOf(request),
    signal: clientGone(request, reply),
  };
  const ka = keepAliveMs(body.keep_alive);
  if (ka !== undefined) req.keepAliveMs = ka;
  if (body.priority) req.priority = body.priority;
  if (body.ignore_eos) req.ignoreEos = true;
  if (body.cache_prompt === false) req.cachePrompt = false;
  return req;
}

interface GenerateOptions {
  kind: "chat" | "completion";
  choices: number;
  stream: boolean;
  includeUsage: boolean;
  tools?: ToolPlan | undefined;
}

function wireOptions(body: ChatCompletionBody | CompletionBody, kind: GenerateOptions["kind"]): GenerateOptions {
  return {
    kind,
    choices: body.n ?? 1,
    stream: body.stream === true,
    includeUsage: body.stream_options?.include_usage === true,
  };
}

/** Starts every choice before answering (so errors still get a status code), then answers in OpenAI's shapes. */
async function generate(
  deps: HttpDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  req: TextRequest,
  o: GenerateOptions,
): Promise<unknown> {
  // The response's id names the request in the live list and traces too.
  const id = completionId(o.kind === "chat" ? "chatcmpl" : "cmpl");
  req.origin = originOf(request, id);
  const run = await deps.inference.generate(req, o.choices);
  const wire = openaiWire({
    id,
    kind: o.kind,
    model: run.model,
    choices: o.choices,
    includeUsage: o.includeUsage,
    version: deps.version,
  });
  return sendGeneration(request, reply, run, wire, {
    stream: o.stream,
    tools: o.kind === "chat" ? o.tools : undefined,
  });
}
