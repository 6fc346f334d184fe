import type { GenerateParams, GrammarSpec, ModelFacts } from "../engine/engine.js";
import { LlmosError } from "../errors.js";
import type { Priority } from "../scheduler/fair-queue.js";
import type { SlotLease } from "../scheduler/model-entry.js";
import type { Scheduler, AcquireOptions } from "../scheduler/scheduler.js";
import type { ModelRecord, ModelStore } from "../store/index.js";
import type { Metrics } from "../telemetry/metrics.js";
import type { RequestOrigin, TrackedRequest } from "../telemetry/request-tracker.js";
import {
  renderFallback,
  isSimpleGoTemplate,
  renderGoTemplate,
  renderJinja,
  type ChatMessage,
  type ChatTool,
  type RenderedChat,
} from "./chat-template.js";
import {
  failure,
  joinChoices,
  runGeneration,
  type GenerationRun,
  type TextGeneration,
  type UsageSink,
} from "./generation-run.js";
import type { JinjaSandbox } from "./jinja-sandbox.js";
import { resolveSampling, type SamplingInput } from "./sampling.js";
import { checkTokenIds } from "./token-ids.js";

export type { GenerationOutcome, GenerationRun, TextGeneration, UsageRecord, UsageSink } from "./generation-run.js";

/** One text generation as the APIs ask for it. Either `prompt` (completion) or `messages` (chat). */
export interface TextRequest {
  model: string;
  prompt?: string | number[];
  messages?: ChatMessage[];
  tools?: ChatTool[];
  /** Completion: use the prompt as is (default true for /v1/completions; Ollama generate sets false). */
  raw?: boolean;
  /** Ollama generate: system prompt and template overrides. */
  system?: string;
  template?: string;
  /** Ollama generate: token ids of an earlier exchange, placed before the (rendered) prompt; no BOS is added. */
  context?: number[];
  options: SamplingInput;
  grammar?: GrammarSpec;
  logprobs?: number;
  /** Generate past end-of-generation tokens (benchmarks). */
  ignoreEos?: boolean;
  /** false: evaluate the whole prompt, reusing no cached KV cells (llama-server's `cache_prompt`). */
  cachePrompt?: boolean;
  keepAliveMs?: number;
  tenant?: string;
  /** The API key making the request (its usage is recorded under it); null or absent without one. */
  keyId?: string | null;
  priority?: Priority;
  signal?: AbortSignal;
  /** Who sent it (request id, key, trace span), for the live request list and traces. */
  origin?: RequestOrigin;
}

/**
 * Inference use cases: turns API requests into prompts and sampling settings, gets a slot from the scheduler,
 * streams from the runner, and measures. Errors before the first chunk (unknown model, full queue, bad options)
 * are thrown from `generate` so the HTTP layer can still answer with a status code.
 */
export class InferenceService {
  constructor(
    private readonly store: ModelStore,
    private readonly scheduler: Scheduler,
    private readonly metrics: Metrics,
    private readonly limits: {
      maxTokens: number;
      templates: JinjaSandbox;
      /** Runners reuse cached prompt prefixes (LLMOS_PROMPT_CACHE); false turns reuse off for every request. */
      promptCache?: boolean;
    },
    /** Receives each request's token usage once its generations (or embeddings) are done. */
    private readonly usage?: UsageSink,
  ) {}

  /** Resolves the model record (404 `model_not_found` with the name when missing). */
  async model(name: string): Promise<ModelRecord> {
    return this.store.get(name);
  }

  /**
   * Starts `choices` generations of one request (each waits for its own slot); if one cannot start, the others
   * are cancelled and the error is thrown. Usage is recorded once when all have ended.
   */
  async generate(req: TextRequest, choices = 1): Promise<GenerationRun> {
    const started: TextGeneration[] = [];
    try {
      for (let i = 0; i < choices; i++) started.push(await this.generateOne(req));
    } catch (error) {
      for (const g of started) g.cancel();
      throw error;
    }
    return joinChoices(started, { sink: this.usage, keyId: req.keyId ?? null });
  }

  private async generateOne(req: TextRequest): Promise<TextGeneration> {
    const started = performance.now();
    const record = await this.store.get(req.model);
    const defaults = record.definition.parameters as Record<string, unknown>;
    const resolved = resolveSampling(req.options, defaults, this.limits.maxTokens);
    const tracked = this.metrics.requests.track({
      origin: req.origin,
      requestModel: req.model,
      model: record.name,
      kind: req.messages ? "chat" : "completion",
      params: { ...resolved.sampling, maxTokens: resolved.maxTokens },
      signal: req.signal,
    });
    const lease = await this.scheduler
      .acquire(record.name, { ...this.acquireOptions(req), signal: tracked.signal })
      .catch((error: unknown) => {
        tracked.finish(failure(error));
        throw error;
      });
    this.started(tracked, lease);
    let prompt: string | number[];
    let templateStops: string[] = [];
    let addBos = true;
    try {
      const vocab = lease.handle.facts.vocabSize;
      if (Array.isArray(req.prompt)) checkTokenIds(req.prompt, vocab, "prompt");
      if (req.context) checkTokenIds(req.context, vocab, "context");
      if (req.messages) {
        const rendered = await this.renderChat(record, req.messages, req.tools, lease.handle.facts);
        prompt = rendered.prompt;
        templateStops = rendered.stop;
        // A template that writes BOS itself must not get a second one from the engine.
        if (lease.handle.facts.bosText && rendered.prompt.startsWith(lease.handle.facts.bosText)) addBos = false;
      } else {
        prompt = await this.completionPrompt(record, req, lease.handle.facts);
      }
      if (req.context?.length) {
        // Like Ollama: the earlier exchange's tokens (which start with BOS already), then the new prompt.
        const rest =
          typeof prompt === "string"
            ? await lease.handle.tokenize(prompt, { addBos: false, parseSpecial: true })
            : prompt;
        prompt = [...req.context, ...rest];
        addBos = false;
      }
    } catch (error) {
      lease.release();
      tracked.finish(failure(error));
      throw error;
    }
    const params: GenerateParams = {
      prompt,
      addBos,
      maxTokens: resolved.maxTokens ?? this.limits.maxTokens,
      sampling: resolved.sampling,
      stop: [...resolved.stop, ...templateStops],
      ...(req.grammar ? { grammar: req.grammar } : {}),
      ...(req.logprobs !== undefined ? { logprobs: req.logprobs } : {}),
      ...(req.ignoreEos ? { stopAtEog: false } : {}),
      ...(req.cachePrompt === false || this.limits.promptCache === false ? { cachePrompt: false } : {}),
    };
    tracked.prompt(prompt);
    return runGeneration(lease, params, {
      started,
      keepAliveMs: req.keepAliveMs,
      metrics: this.metrics,
      tracked,
    });
  }

  /** Renders a chat the way `generate` would (for `/api/apply-template`). */
  async applyTemplate(
    model: string,
    messages: ChatMessage[],
    tools?: ChatTool[],
  ): Promise<RenderedChat & { model: string }> {
    const record = await this.store.get(model);
    const lease = await this.scheduler.acquire(record.name);
    try {
      return { ...(await this.renderChat(record, messages, tools, lease.handle.facts)), model: record.name };
    } finally {
      lease.release();
    }
  }

  /**
   * Embeds `inputs` with one slot of `model`, in batches (see {@link embeddingBatches}); the usage is recorded under
   * `opts.keyId`. `truncate` cuts inputs longer than the context to their first tokens; otherwise they fail with
   * `context_length_exceeded`.
   */
  async embed(
    model: string,
    inputs: string[],
    opts: Omit<AcquireOptions, "queueTimeoutMs"> & {
      origin?: RequestOrigin;
      keyId?: string | null;
      truncate?: boolean;
    } = {},
  ): Promise<{ model: string; vectors: number[][]; promptTokens: number; totalMs: number; loadMs: number }> {
    const started = performance.now();
    const record = await this.store.get(model);
    const { origin, keyId, truncate, ...acquire } = opts;
    const tracked = this.metrics.requests.track({
      origin,
      requestModel: model,
      model: record.name,
      kind: "embeddings",
      signal: opts.signal,
    });
    const lease = await this.scheduler
      .acquire(record.name, { ...acquire, signal: tracked.signal })
      .catch((error: unknown) => {
        tracked.finish(failure(error));
        throw error;
      });
    this.started(tracked, lease);
    // The client going away, or an admin cancelling the request, stops the embedding.
    const signal = tracked.signal;
    const vectors: number[][] = [];
    let promptTokens = 0;
    try {
      // In batches: each is one runner request, so a cancelled request stops between batches (and the runner
      // between inputs), and no single message carries megabytes of text or vectors.
      for (const batch of embeddingBatches(inputs)) {
        signal.throwIfAborted();
        const reply = await lease.handle.embed(batch, { signal, ...(truncate ? { truncate } : {}) });
        vectors.push(...reply.vectors);
        promptTokens += reply.promptTokens;
      }
      tracked.finish({ outcome: "ok", promptTokens, completionTokens: 0, finishReason: null, loadMs: lease.loadMs });
      return { model: record.name, vectors, promptTokens, totalMs: performance.now() - started, loadMs: lease.loadMs };
    } catch (error) {
      const e =
        signal.aborted && !(error instanceof LlmosError)
          ? new LlmosError("client_closed", "the request was cancelled", undefined, { cause: error })
          : error;
      tracked.finish(failure(e));
      throw e;
    } finally {
      // What was embedded was computed, whether or not the client stayed for it: counted and charged.
      this.metrics.tokens.inc({ model: record.name, kind: "prompt" }, promptTokens);
      if (promptTokens > 0)
        this.usage?.({ keyId: keyId ?? null, model: record.name, promptTokens, completionTokens: 0 });
      lease.release(opts.keepAliveMs !== undefined ? { keepAliveMs: opts.keepAliveMs } : undefined);
    }
  }

  async tokenize(
    model: string,
    text: string,
    opts: { addBos?: boolean; parseSpecial?: boolean; signal?: AbortSignal } = {},
  ): Promise<{ model: string; tokens: number[] }> {
    const record = await this.store.get(model);
    const lease = await this.scheduler.acquire(record.name, opts.signal ? { signal: opts.signal } : {});
    try {
      return { model: record.name, tokens: await lease.handle.tokenize(text, opts) };
    } finally {
      lease.release();
    }
  }

  async detokenize(
    model: string,
    tokens: number[],
    opts: { signal?: AbortSignal } = {},
  ): Promise<{ model: string; text: string }> {
    const record = await this.store.get(model);
    const lease = await this.scheduler.acquire(record.name, opts.signal ? { signal: opts.signal } : {});
    try {
      checkTokenIds(tokens, lease.handle.facts.vocabSize, "tokens");
      return { model: record.name, text: await lease.handle.detokenize(tokens) };
    } finally {
      lease.release();
    }
  }

  private acquireOptions(req: TextRequest): AcquireOptions {
    return {
      ...(req.tenant !== undefined ? { tenant: req.tenant } : {}),
      ...(req.priority !== undefined ? { priority: req.priority } : {}),
      ...(req.signal !== undefined ? { signal: req.signal } : {}),
      ...(req.keepAliveMs !== undefined ? { keepAliveMs: req.keepAliveMs } : {}),
    };
  }

  private async completionPrompt(record: ModelRecord, req: TextRequest, facts: ModelFacts): Promise<string | number[]> {
    const prompt = req.prompt ?? "";
    if (req.raw !== false || Array.isArray(prompt)) return prompt;
    // Ollama generate without raw: the prompt is a one-turn chat with the definition's system prompt.
    const messages: ChatMessage[] = [];
    const system = req.system ?? record.definition.system;
    if (system) messages.push({ role: "system", content: system });
    messages.push({ role: "user", content: prompt });
    if (req.template !== undefined) return renderGoTemplate(req.template, messages);
    if (!record.definition.template && !record.summary.chatTemplate)
      return req.system !== undefined || record.definition.system ? `${system}\n\n${prompt}` : prompt;
    return (await this.renderChat(record, messages, undefined, facts)).prompt;
  }

  private async renderChat(
    record: ModelRecord,
    messages: ChatMessage[],
    tools: ChatTool[] | undefined,
    facts: ModelFacts,
  ): Promise<RenderedChat> {
    const def = record.definition;
    const all: ChatMessage[] = [];
    if (def.system && !messages.some((m) => m.role === "system")) all.push({ role: "system", content: def.system });
    for (const m of def.messages) all.push({ role: m.role as ChatMessage["role"], content: m.content });
    all.push(...messages);
    const jinja = record.summary.chatTemplate;
    // A pulled Ollama template beyond the subset we render (ranges over .Messages...) would come out mangled: the
    // GGUF's own chat template says the same thing in Jinja, so it wins then.
    if (def.template && (isSimpleGoTemplate(def.template) || !jinja)) {
      return { prompt: renderGoTemplate(def.template, all), stop: [], source: "definition" };
    }
    if (jinja) {
      // The template writes BOS itself when it wants one; the engine must not add a second.
      return {
        prompt: await renderJinja(this.limits.templates, jinja, all, {
          bosText: facts.bosText,
          eosText: facts.eosText,
          ...(tools ? { tools } : {}),
        }),
        stop: [],
        source: "gguf",
      };
    }
    return renderFallback(all);
  }

  /** A tracked request got its slot: the request list shows it running; a load it waited for is a cold start. */
  private started(tracked: TrackedRequest, lease: SlotLease): void {
    tracked.started();
    if (lease.loadMs > 0) this.metrics.coldStarts.inc({ model: lease.model });
  }
}

/** Inputs per embedding batch, and characters (about 4 per token) per batch. */
export const EMBED_BATCH_INPUTS = 32;
export const EMBED_BATCH_CHARS = 64 * 1024;

/** Splits inputs into batches of at most EMBED_BATCH_INPUTS inputs and EMBED_BATCH_CHARS characters (or one input). */
export function* embeddingBatches(inputs: readonly string[]): Generator<string[]> {
  let batch: string[] = [];
  let chars = 0;
  for (const text of inputs) {
    if (batch.length > 0 && (batch.length >= EMBED_BATCH_INPUTS || chars + text.length > EMBED_BATCH_CHARS)) {
      yield batch;
      batch = [];
      chars = 0;
    }
    batch.push(text);
    chars += text.length;
  }
  if (batch.length > 0) yield batch;
}

export function isModelNotFound(error: unknown): boolean {
  return error instanceof LlmosError && error.code === "model_not_found";
}
