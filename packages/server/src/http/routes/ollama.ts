import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { LlmosError } from "../../errors.js";
import type { GenerationOutcome, TextGeneration, TextRequest } from "../../inference/inference-service.js";
import type { ModelRecord } from "../../store/index.js";
import type { HttpDeps } from "../deps.js";
import { checkSchemaLimits, checkToolLimits } from "../input-limits.js";
import { streamErrorPayload } from "../errors.js";
import { mapOllamaOptions, type MappedOptions } from "../ollama/options.js";
import { ChatBody, EmbedBody, EmbeddingsBody, GenerateBody } from "../ollama/schemas.js";
import {
  doneReason,
  grammarFromFormat,
  ollamaMessages,
  ollamaMetrics,
  ollamaToolCall,
  ollamaTools,
  rejectImages,
} from "../ollama/translate.js";
import { parseToolCall, planTools, ToolStreamGate, type ToolPlan } from "../openai/tools.js";
import { clientGone, originOf, tenantOf } from "../request-context.js";
import { ResponseStream } from "../streaming.js";
import { applyToolPrompt } from "./openai.js";
import { keepAliveMs } from "./runtime.js";

const errorStyle = "ollama" as const;
const tags = ["ollama"];

/**
 * The Ollama-compatible API: `/api/generate`, `/api/chat`, `/api/embed`, `/api/embeddings`, `/api/version` and
 * `GET|HEAD /`. Streams NDJSON by default like Ollama. Model management (`/api/tags`, `/api/show`, ...) lives in
 * ollama-models.ts; `/api/ps` is the runtime route (it carries Ollama's fields).
 */
export function ollamaRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    app.get(
      "/",
      {
        schema: {
          summary: "Liveness in Ollama's words (answers 'Ollama is running'); browsers are redirected to /ui",
          tags,
        },
        config: { scope: "public", errorStyle },
      },
      async (request, reply) => {
        // A browser (it asks for HTML) gets the dashboard; API clients keep Ollama's liveness answer.
        if (/\btext\/html\b/.test(request.headers.accept ?? "")) return reply.redirect("/ui/", 302);
        // Ollama clients probe `/` for a 200; the body is Ollama's so that text checks pass too.
        return reply
          .header("server", `llmos/${deps.version}`)
          .type("text/plain; charset=utf-8")
          .send("Ollama is running");
      },
    );

    app.get(
      "/api/version",
      { schema: { summary: "Server version (Ollama)", tags }, config: { scope: "public", errorStyle } },
      async () => ({ version: deps.version }),
    );

    app.post<{ Body: GenerateBody }>(
      "/api/generate",
      {
        schema: { body: GenerateBody, summary: "Generate a completion (Ollama)", tags },
        config: { scope: "inference", errorStyle },
      },
      async (request, reply) => {
        const body = request.body;
        if (body.images?.length) rejectImages("images");
        if (body.suffix)
          throw new LlmosError("invalid_request", `"suffix" (fill-in-the-middle) is not supported`, {
            param: "suffix",
          });
        rejectThink(body.think);
        const options = mapOllamaOptions(body.options, optionContext(deps));
        checkSchemaLimits(body.format, "format", deps.config.limits);
        const grammar = grammarFromFormat(body.format);
        const ka = keepAliveMs(body.keep_alive ?? undefined);
        const record = await deps.inference.model(body.model);
        if (!body.prompt && !body.context?.length) return loadOrUnload(deps, record, ka, options, { response: "" });
        if (body.context?.length) {
          const vocab = record.summary.vocabSize ?? Infinity;
          const bad = body.context.find((t) => t >= vocab);
          if (bad !== undefined)
            throw new LlmosError(
              "invalid_request",
              `context holds token id ${bad}, outside the model's vocabulary of ${vocab}`,
              { param: "context" },
            );
        }
        await ensureContextSize(deps, record, options);
        const req: TextRequest = {
          ...baseRequest(request, reply, body.model, options, ka),
          prompt: body.prompt ?? "",
          raw: body.raw === true,
        };
        if (body.system !== undefined) req.system = body.system;
        if (body.template) req.template = body.template;
        if (body.context?.length) req.context = body.context;
        if (grammar) req.grammar = grammar;
        const generation = await deps.inference.generate(req);
        // Ollama returns `context` (prompt + response tokens) except in raw mode.
        const context = body.raw === true ? undefined : (text: string) => contextTokens(deps, generation, text);
        return respond(deps, request, reply, generation, body.stream !== false, "generate", undefined, context);
      },
    );

    app.post<{ Body: ChatBody }>(
      "/api/chat",
      { schema: { body: ChatBody, summary: "Chat (Ollama)", tags }, config: { scope: "inference", errorStyle } },
      async (request, reply) => {
        const body = request.body;
        rejectThink(body.think);
        const options = mapOllamaOptions(body.options, optionContext(deps));
        checkSchemaLimits(body.format, "format", deps.config.limits);
        const grammar = grammarFromFormat(body.format);
        const ka = keepAliveMs(body.keep_alive ?? undefined);
        const messages = ollamaMessages(body.messages ?? [], deps.config.limits.messages);
        checkToolLimits(body.tools ?? undefined, deps.config.limits);
        const plan = planTools(body.tools ? ollamaTools(body.tools) : undefined, "auto");
        const record = await deps.inference.model(body.model);
        if (messages.length === 0)
          return loadOrUnload(deps, record, ka, options, { message: { role: "assistant", content: "" } });
        await ensureContextSize(deps, record, options);
        const req: TextRequest = { ...baseRequest(request, reply, body.model, options, ka), messages };
        if (grammar) req.grammar = grammar;
        if (plan) await applyToolPrompt(deps, req, plan);
        const generation = await deps.inference.generate(req);
        return respond(deps, request, reply, generation, body.stream !== false, "chat", plan);
      },
    );

    app.post<{ Body: EmbedBody }>(
      "/api/embed",
      {
        schema: { body: EmbedBody, summary: "Embeddings, L2-normalised (Ollama)", tags },
        config: { scope: "inference", errorStyle },
      },
      async (request, reply) => {
        const body = request.body;
        mapOllamaOptions(body.options, optionContext(deps));
        const ka = keepAliveMs(body.keep_alive ?? undefined);
        const inputs = typeof body.input === "string" ? [body.input] : body.input;
        const started = performance.now();
        if (inputs.length === 0) {
          const record = await deps.inference.model(body.model);
          const loaded = await deps.scheduler.load(record.name, ka !== undefined ? { keepAliveMs: ka } : {});
          return {
            model: loaded.name,
            embeddings: [],
            total_duration: Math.round((performance.now() - started) * 1e6),
            load_duration: 0,
            prompt_eval_count: 0,
          };
        }
        const fitted = await fitInputs(deps, body.model, inputs, body.truncate !== false, ka);
        const result = await deps.inference.embed(body.model, fitted, {
          signal: clientGone(request, reply),
          tenant: tenantOf(request),
          origin: originOf(request),
          ...(ka !== undefined ? { keepAliveMs: ka } : {}),
        });
        deps.recordUsage?.(request, result.model, result.promptTokens, 0);
        const embeddings = result.vectors.map((v) => normalise(body.dimensions ? v.slice(0, body.dimensions) : v));
        return {
          model: result.model,
          embeddings,
          total_duration: Math.round(result.totalMs * 1e6),
          load_duration: Math.round(result.loadMs * 1e6),
          prompt_eval_count: result.promptTokens,
        };
      },
    );

    app.post<{ Body: EmbeddingsBody }>(
      "/api/embeddings",
      {
        schema: { body: EmbeddingsBody, summary: "One embedding, not normalised (Ollama's older endpoint)", tags },
        config: { scope: "inference", errorStyle },
      },
      async (request, reply) => {
        const body = request.body;
        mapOllamaOptions(body.options, optionContext(deps));
        const ka = keepAliveMs(body.keep_alive ?? undefined);
        if (body.prompt === "") {
          const record = await deps.inference.model(body.model);
          await deps.scheduler.load(record.name, ka !== undefined ? { keepAliveMs: ka } : {});
          return { embedding: [] };
        }
        const result = await deps.inference.embed(body.model, [body.prompt], {
          signal: clientGone(request, reply),
          tenant: tenantOf(request),
          origin: originOf(request),
          ...(ka !== undefined ? { keepAliveMs: ka } : {}),
        });
        deps.recordUsage?.(request, result.model, result.promptTokens, 0);
        return { embedding: result.vectors[0] };
      },
    );
  };
}

function optionContext(deps: HttpDeps) {
  return { threads: deps.config.threads, gpu: deps.config.gpu === "auto", stopLimit: deps.config.limits.stopSequences };
}

function rejectThink(think: boolean | string | null | undefined): void {
  if (think !== undefined && think !== null && think !== false)
    throw new LlmosError("invalid_request", `"think" is not supported by llmos' models`, { param: "think" });
}

function baseRequest(
  request: FastifyRequest,
  reply: FastifyReply,
  model: string,
  options: MappedOptions,
  ka: number | undefined,
): TextRequest {
  const req: TextRequest = {
    model,
    options: options.sampling,
    tenant: tenantOf(request),
    signal: clientGone(request, reply),
    origin: originOf(request),
  };
  if (ka !== undefined) req.keepAliveMs = ka;
  return req;
}

/** `num_ctx` like Ollama: the model is (re)loaded with that context size per sequence when it differs. */
async function ensureContextSize(deps: HttpDeps, record: ModelRecord, options: MappedOptions): Promise<void> {
  if (options.numCtx === undefined) return;
  // The scheduler clamps to the training context; ask for the clamped size so an equal request does not reload.
  await deps.scheduler.load(record.name, { contextSize: clampCtx(record, options.numCtx) });
}

function clampCtx(record: ModelRecord, numCtx: number): number {
  const train = record.summary.contextLength;
  return train ? Math.min(numCtx, train) : numCtx;
}

/** Ollama's empty-prompt requests: load the model, or with `keep_alive: 0` unload it. */
async function loadOrUnload(
  deps: HttpDeps,
  record: ModelRecord,
  ka: number | undefined,
  options: MappedOptions,
  payload: Record<string, unknown>,
) {
  const created_at = new Date().toISOString();
  if (ka === 0) {
    await deps.scheduler.unload(record.name);
    return { model: record.name, created_at, ...payload, done: true, done_reason: "unload" };
  }
  await deps.scheduler.load(record.name, {
    ...(ka !== undefined ? { keepAliveMs: ka } : {}),
    ...(options.numCtx !== undefined ? { contextSize: clampCtx(record, options.numCtx) } : {}),
  });
  return { model: record.name, created_at, ...payload, done: true, done_reason: "load" };
}

/** Prompt + response as token ids (Ollama's `context`), tokenized the way the prompt was. */
async function contextTokens(deps: HttpDeps, generation: TextGeneration, response: string): Promise<number[]> {
  const prompt = generation.prompt;
  if (Array.isArray(prompt)) {
    const rest = response
      ? (await deps.inference.tokenize(generation.model, response, { addBos: false, parseSpecial: false })).tokens
      : [];
    return [...prompt, ...rest];
  }
  return (await deps.inference.tokenize(generation.model, prompt + response, { addBos: true, parseSpecial: true }))
    .tokens;
}

async function respond(
  deps: HttpDeps,
  request: FastifyRequest,
  reply: FastifyReply,
  generation: TextGeneration,
  stream: boolean,
  kind: "generate" | "chat",
  plan?: ToolPlan,
  context?: (text: string) => Promise<number[]>,
) {
  const model = generation.model;
  const piece = (text: string) =>
    kind === "generate" ? { response: text } : { message: { role: "assistant", content: text } };
  const final = async (outcome: GenerationOutcome, text: string, extra: Record<string, unknown> = {}) => {
    deps.recordUsage?.(request, model, outcome.promptTokens, outcome.completionTokens);
    return {
      model,
      created_at: new Date().toISOString(),
      ...extra,
      done: true,
      done_reason: doneReason(outcome),
      ...(context ? { context: await context(text) } : {}),
      ...ollamaMetrics(outcome),
    };
  };

  if (!stream) {
    let text = "";
    for await (const chunk of generation) text += chunk.text;
    const outcome = await generation.result;
    const call = plan ? parseToolCall(text, plan.tools) : null;
    const body =
      kind === "generate"
        ? { response: text }
        : {
            message: {
              role: "assistant",
              content: call ? "" : text,
              ...(call ? { tool_calls: [ollamaToolCall(call)] } : {}),
            },
          };
    return final(outcome, text, body);
  }

  const out = new ResponseStream(reply, "application/x-ndjson");
  const gate = plan ? new ToolStreamGate(plan.mode) : undefined;
  let text = "";
  try {
    for await (const chunk of generation) {
      text += chunk.text;
      const shown = gate ? gate.push(chunk.text) : chunk.text;
      if (!shown) continue;
      await out.ndjson({ model, created_at: new Date().toISOString(), ...piece(shown), done: false });
    }
    const outcome = await generation.result;
    if (gate?.held && plan) {
      const call = parseToolCall(gate.held, plan.tools);
      const message = call
        ? { role: "assistant", content: "", tool_calls: [ollamaToolCall(call)] }
        : { role: "assistant", content: gate.held };
      await out.ndjson({ model, created_at: new Date().toISOString(), message, done: false });
    }
    await out.ndjson(await final(outcome, text, piece("")));
  } catch (error) {
    generation.cancel();
    if (!out.closed) await out.ndjson(streamErrorPayload(error, "ollama"));
    request.log.warn({ err: error, reqId: request.id }, "stream ended with an error");
  } finally {
    out.end();
  }
  return reply;
}

function normalise(v: number[]): number[] {
  let sum = 0;
  for (const x of v) sum += x * x;
  const norm = Math.sqrt(sum);
  return norm > 0 ? v.map((x) => x / norm) : v;
}

/**
 * Fits embedding inputs into the model's per-sequence context (the limit both engines share): longer inputs are cut
 * to their first tokens (Ollama's default `truncate: true`) or refused with a 400 (`truncate: false`).
 */
async function fitInputs(
  deps: HttpDeps,
  model: string,
  inputs: string[],
  truncate: boolean,
  ka: number | undefined,
): Promise<string[]> {
  const loaded = await deps.scheduler.load(
    (await deps.inference.model(model)).name,
    ka !== undefined ? { keepAliveMs: ka } : {},
  );
  // Room for BOS and EOS, which the engines add around the text.
  const limit = Math.max(1, loaded.contextSize - 2);
  return Promise.all(
    inputs.map(async (text, i) => {
      const { tokens } = await deps.inference.tokenize(model, text, { addBos: false });
      if (tokens.length <= limit) return text;
      if (!truncate)
        throw new LlmosError(
          "invalid_request",
          `input[${i}] has ${tokens.length} tokens, over the context of ${limit} (truncate is false)`,
          { param: "input" },
        );
      return (await deps.inference.detokenize(model, tokens.slice(0, limit))).text;
    }),
  );
}
