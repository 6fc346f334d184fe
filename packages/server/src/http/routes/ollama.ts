import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { LlmosError } from "../../errors.js";
import type { GenerationRun, TextRequest } from "../../inference/inference-service.js";
import type { ModelRecord } from "../../store/index.js";
import { jsonWithoutContentType } from "../body-guards.js";
import type { HttpDeps } from "../deps.js";
import { checkSchemaLimits, checkToolLimits } from "../input-limits.js";
import { sendGeneration } from "../generation-response.js";
import { mapOllamaOptions, type MappedOptions } from "../ollama/options.js";
import { ChatBody, EmbedBody, EmbeddingsBody, GenerateBody } from "../ollama/schemas.js";
import { grammarFromFormat, ollamaMessages, ollamaTools, rejectImages } from "../ollama/translate.js";
import { ollamaWire } from "../ollama/wire.js";
import { planTools } from "../openai/tools.js";
import { clientGone, keyIdOf, originOf, tenantOf } from "../request-context.js";
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
    app.addHook("onRequest", jsonWithoutContentType);
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
        if (!body.prompt && !body.context?.length)
          return loadOrUnload(deps, request, record, ka, options, { response: "" });
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
        await ensureContextSize(deps, request, record, options);
        const req: TextRequest = {
          ...baseRequest(request, reply, body.model, options, ka, body.cache_prompt),
          prompt: body.prompt ?? "",
          raw: body.raw === true,
        };
        if (body.system !== undefined) req.system = body.system;
        if (body.template) req.template = body.template;
        if (body.context?.length) req.context = body.context;
        if (grammar) req.grammar = grammar;
        const run = await deps.inference.generate(req);
        // Ollama returns `context` (prompt + response tokens) except in raw mode.
        const context = body.raw === true ? undefined : (text: string) => contextTokens(deps, run, text);
        const wire = ollamaWire({ kind: "generate", model: run.model, context });
        return sendGeneration(request, reply, run, wire, { stream: body.stream !== false });
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
          return loadOrUnload(deps, request, record, ka, options, { message: { role: "assistant", content: "" } });
        await ensureContextSize(deps, request, record, options);
        const req: TextRequest = {
          ...baseRequest(request, reply, body.model, options, ka, body.cache_prompt),
          messages,
        };
        if (grammar) req.grammar = grammar;
        if (plan) await applyToolPrompt(deps, req, plan);
        const run = await deps.inference.generate(req);
        const wire = ollamaWire({ kind: "chat", model: run.model });
        return sendGeneration(request, reply, run, wire, { stream: body.stream !== false, tools: plan });
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
        // Like Ollama, inputs longer than the context are cut to their first tokens unless truncate is false; then
        // the overflow is refused in Ollama's words (http/errors.ts).
        const result = await deps.inference.embed(body.model, inputs, {
          signal: clientGone(request, reply),
          tenant: tenantOf(request),
          origin: originOf(request),
          keyId: keyIdOf(request),
          truncate: body.truncate !== false,
          ...(ka !== undefined ? { keepAliveMs: ka } : {}),
        });
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
          keyId: keyIdOf(request),
          ...(ka !== undefined ? { keepAliveMs: ka } : {}),
        });
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
  cachePrompt: boolean | undefined,
): TextRequest {
  const req: TextRequest = {
    model,
    options: options.sampling,
    tenant: tenantOf(request),
    keyId: keyIdOf(request),
    signal: clientGone(request, reply),
    origin: originOf(request),
  };
  if (ka !== undefined) req.keepAliveMs = ka;
  if (cachePrompt === false) req.cachePrompt = false;
  return req;
}

/**
 * `num_ctx` like Ollama: the model is (re)loaded with that context size per sequence when it differs (within
 * [256, the training context]). A reload is costly for everyone using the model: it counts against the caller's
 * request rate limit.
 */
async function ensureContextSize(
  deps: HttpDeps,
  request: FastifyRequest,
  record: ModelRecord,
  options: MappedOptions,
): Promise<void> {
  if (options.numCtx === undefined) return;
  // The scheduler clamps to the training context; ask for the clamped size so an equal request does not reload.
  const contextSize = clampCtx(record, options.numCtx);
  const loaded = (await deps.scheduler.ps()).models.find((m) => m.name === record.name);
  if (loaded && loaded.contextSize !== contextSize) await deps.admitReload?.(request);
  await deps.scheduler.load(record.name, { contextSize });
}

function clampCtx(record: ModelRecord, numCtx: number): number {
  const train = record.summary.contextLength;
  return train ? Math.min(numCtx, train) : numCtx;
}

/** Ollama's empty-prompt requests: load the model, or with `keep_alive: 0` unload it. */
async function loadOrUnload(
  deps: HttpDeps,
  request: FastifyRequest,
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
  await ensureContextSize(deps, request, record, options);
  await deps.scheduler.load(record.name, ka !== undefined ? { keepAliveMs: ka } : {});
  return { model: record.name, created_at, ...payload, done: true, done_reason: "load" };
}

/** Prompt + response as token ids (Ollama's `context`), tokenized the way the prompt was. */
async function contextTokens(deps: HttpDeps, generation: GenerationRun, response: string): Promise<number[]> {
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

function normalise(v: number[]): number[] {
  let sum = 0;
  for (const x of v) sum += x * x;
  const norm = Math.sqrt(sum);
  return norm > 0 ? v.map((x) => x / norm) : v;
}
