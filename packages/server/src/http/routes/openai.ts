import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { TokenLogprob } from "../../engine/engine.js";
import type { GenerationOutcome, TextGeneration, TextRequest } from "../../inference/inference-service.js";
import type { HttpDeps } from "../deps.js";
import { checkSchemaLimits, checkToolLimits } from "../input-limits.js";
import { LlmosError } from "../../errors.js";
import { streamErrorPayload } from "../errors.js";
import { ChatCompletionBody, CompletionBody, EmbeddingBody } from "../openai/schemas.js";
import {
  chatMessages,
  completionId,
  embeddingBase64,
  finishReason,
  grammarFromResponseFormat,
  logprobsCount,
  rejectUnsupported,
  samplingFromOpenAI,
  usageOf,
} from "../openai/translate.js";
import {
  parseToolCall,
  planTools,
  templateRendersTools,
  toolCallId,
  ToolStreamGate,
  withToolInstructions,
  type ToolPlan,
} from "../openai/tools.js";
import { clientGone, originOf, tenantOf } from "../request-context.js";
import { ResponseStream } from "../streaming.js";
import { keepAliveMs } from "./runtime.js";

type Kind = "chat" | "completion";

/** The OpenAI-compatible API: `/v1/models`, `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`. */
export function openaiRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    const errorStyle = "openai" as const;

    app.get(
      "/v1/models",
      { config: { scope: "models:read", errorStyle }, schema: { summary: "List models (OpenAI)", tags: ["openai"] } },
      async () => {
        const models = await deps.store.list();
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
        return respond(
          deps,
          request,
          reply,
          "chat",
          req,
          body.n ?? 1,
          body.stream === true,
          body.stream_options?.include_usage === true,
          plan,
        );
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
        return respond(
          deps,
          request,
          reply,
          "completion",
          req,
          body.n ?? 1,
          body.stream === true,
          body.stream_options?.include_usage === true,
        );
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
        });
        deps.recordUsage?.(request, result.model, result.promptTokens, 0);
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
    signal: clientGone(request, reply),
  };
  const ka = keepAliveMs(body.keep_alive);
  if (ka !== undefined) req.keepAliveMs = ka;
  if (body.priority) req.priority = body.priority;
  if (body.ignore_eos) req.ignoreEos = true;
  return req;
}

async function respond(
  deps: HttpDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  kind: Kind,
  req: TextRequest,
  n: number,
  stream: boolean,
  includeUsage: boolean,
  plan?: ToolPlan,
) {
  const id = completionId(kind === "chat" ? "chatcmpl" : "cmpl");
  req.origin = originOf(request, id);
  // Acquire every choice's generation before answering, so errors (404, 503, 400) still get a status code.
  const generations: TextGeneration[] = [];
  try {
    for (let i = 0; i < n; i++) generations.push(await deps.inference.generate(req));
  } catch (error) {
    for (const g of generations) g.cancel();
    throw error;
  }
  const created = Math.floor(Date.now() / 1000);
  const model = generations[0]!.model;
  if (!stream) {
    const choices = await Promise.all(generations.map((g, index) => collect(g).then((c) => ({ index, ...c }))));
    const usage = sumUsage(choices.map((c) => c.outcome));
    deps.recordUsage?.(request, model, usage.promptTokens, usage.completionTokens);
    return {
      id,
      object: kind === "chat" ? "chat.completion" : "text_completion",
      created,
      model,
      system_fingerprint: `llmos-${deps.version}`,
      choices: choices.map((c) => {
        if (kind !== "chat")
          return {
            index: c.index,
            text: c.text,
            logprobs: c.logprobs ? completionLogprobs(c.logprobs) : null,
            finish_reason: finishReason(c.outcome.finishReason),
          };
        const call = plan ? parseToolCall(c.text, plan.tools) : null;
        if (call) {
          const tool_calls = [
            {
              id: toolCallId(),
              type: "function",
              function: { name: call.name, arguments: JSON.stringify(call.arguments) },
            },
          ];
          return {
            index: c.index,
            message: { role: "assistant", content: null, tool_calls, refusal: null },
            logprobs: null,
            finish_reason: "tool_calls",
          };
        }
        return {
          index: c.index,
          message: { role: "assistant", content: c.text, refusal: null },
          logprobs: c.logprobs ? { content: c.logprobs.map(chatLogprob) } : null,
          finish_reason: finishReason(c.outcome.finishReason),
        };
      }),
      usage: usageOf(usage),
    };
  }

  const out = new ResponseStream(reply, "text/event-stream");
  const object = kind === "chat" ? "chat.completion.chunk" : "text_completion";
  const frame = (choices: unknown[], extra: Record<string, unknown> = {}) => ({
    id,
    object,
    created,
    model,
    system_fingerprint: `llmos-${deps.version}`,
    choices,
    ...extra,
  });
  try {
    if (kind === "chat")
      for (let i = 0; i < n; i++)
        await out.sse(
          frame([{ index: i, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }]),
        );
    const outcomes = await Promise.all(
      generations.map(async (g, index) => {
        const gate = plan && kind === "chat" ? new ToolStreamGate(plan.mode) : undefined;
        for await (const chunk of g) {
          if (!chunk.text && !chunk.logprobs) continue;
          const text = gate ? gate.push(chunk.text) : chunk.text;
          // Held-back text (a tool call in the making) is sent at the end, without logprobs.
          if (gate && !text && gate.holding) continue;
          const logprobs = chunk.logprobs
            ? kind === "chat"
              ? { content: chunk.logprobs.map(chatLogprob) }
              : completionLogprobs(chunk.logprobs)
            : null;
          await out.sse(
            frame([
              kind === "chat"
                ? { index, delta: { content: text }, logprobs, finish_reason: null }
                : { index, text, logprobs, finish_reason: null },
            ]),
          );
        }
        const outcome = await g.result;
        let reason: string = finishReason(outcome.finishReason);
        if (gate && plan && gate.held) {
          const call = parseToolCall(gate.held, plan.tools);
          if (call) {
            const id = toolCallId();
            await out.sse(
              frame([
                {
                  index,
                  delta: {
                    tool_calls: [{ index: 0, id, type: "function", function: { name: call.name, arguments: "" } }],
                  },
                  logprobs: null,
                  finish_reason: null,
                },
              ]),
            );
            await out.sse(
              frame([
                {
                  index,
                  delta: { tool_calls: [{ index: 0, function: { arguments: JSON.stringify(call.arguments) } }] },
                  logprobs: null,
                  finish_reason: null,
                },
              ]),
            );
            reason = "tool_calls";
          } else {
            await out.sse(frame([{ index, delta: { content: gate.held }, logprobs: null, finish_reason: null }]));
          }
        }
        await out.sse(
          frame([
            kind === "chat"
              ? { index, delta: {}, logprobs: null, finish_reason: reason }
              : { index, text: "", logprobs: null, finish_reason: reason },
          ]),
        );
        return outcome;
      }),
    );
    const usage = sumUsage(outcomes);
    deps.recordUsage?.(request, model, usage.promptTokens, usage.completionTokens);
    if (includeUsage) await out.sse(frame([], { usage: usageOf(usage) }));
    await out.sse("[DONE]");
  } catch (error) {
    for (const g of generations) g.cancel();
    if (!out.closed) {
      await out.sse(streamErrorPayload(error, "openai"));
    }
    request.log.warn({ err: error, reqId: request.id }, "stream ended with an error");
  } finally {
    out.end();
  }
  return reply;
}

async function collect(
  g: TextGeneration,
): Promise<{ text: string; logprobs: TokenLogprob[] | undefined; outcome: GenerationOutcome }> {
  let text = "";
  let logprobs: TokenLogprob[] | undefined;
  for await (const chunk of g) {
    text += chunk.text;
    if (chunk.logprobs) (logprobs ??= []).push(...chunk.logprobs);
  }
  return { text, logprobs, outcome: await g.result };
}

function sumUsage(outcomes: GenerationOutcome[]): { promptTokens: number; completionTokens: number } {
  // The prompt is shared by all choices: count it once, like OpenAI.
  return {
    promptTokens: outcomes[0]?.promptTokens ?? 0,
    completionTokens: outcomes.reduce((n, o) => n + o.completionTokens, 0),
  };
}

function chatLogprob(l: TokenLogprob) {
  const bytes = (t: string) => [...Buffer.from(t, "utf8")];
  return {
    token: l.token,
    logprob: l.logprob,
    bytes: bytes(l.token),
    top_logprobs: l.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: bytes(t.token) })),
  };
}

function completionLogprobs(list: TokenLogprob[]) {
  return {
    tokens: list.map((l) => l.token),
    token_logprobs: list.map((l) => l.logprob),
    top_logprobs: list.map((l) => Object.fromEntries(l.top.map((t) => [t.token, t.logprob]))),
    text_offset: list.reduce<number[]>(
      (acc, l, i) => (acc.push(i === 0 ? 0 : acc[i - 1]! + list[i - 1]!.token.length), acc),
      [],
    ),
  };
}
