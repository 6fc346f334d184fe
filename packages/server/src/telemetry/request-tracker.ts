import type { ActiveRequest, DaemonEventMap } from "@llmos/protocol";
import type { Span } from "@opentelemetry/api";
import type { EventHub } from "./event-hub.js";
import type { GenerationSpanInput, Tracing } from "./tracing.js";

/** Where a request came from: set by the HTTP layer, carried through inference untouched. */
export interface RequestOrigin {
  /** The HTTP request's id (`x-request-id`). */
  requestId: string;
  keyId: string | null;
  keyName: string | null;
  /** The HTTP request's server span (tracing on). */
  span?: Span | undefined;
  /** The id the response will carry (`chatcmpl-...`), when the API has one. */
  responseId?: string | undefined;
}

/** Who asked for a generation and for what; the inference layer fills it from its request. */
export interface TrackInput {
  origin?: RequestOrigin | undefined;
  /** The model name as asked for, and as resolved. */
  requestModel: string;
  model: string;
  kind: ActiveRequest["kind"];
  /** Sampling settings as resolved, for the trace. */
  params?: GenerationSpanInput["request"];
  /** The caller's own abort signal (client gone); the tracked signal fires on it too. */
  signal?: AbortSignal | undefined;
}

/** How a generation ended, as the inference layer measured it. */
export interface TrackedOutcome {
  outcome: "ok" | "error" | "cancelled";
  promptTokens: number;
  completionTokens: number;
  finishReason: string | null;
  loadMs?: number;
  promptMs?: number;
  generateMs?: number;
  error?: string;
}

/** One generation from arrival to its end, as the dashboard's request list and `/api/requests` show it. */
export class TrackedRequest {
  private readonly controller = new AbortController();
  private ended = false;
  private inputText: string | undefined;
  private outputText = "";
  private streamEnded = false;
  private pendingTrace: (() => void) | undefined;
  readonly info: ActiveRequest;

  constructor(
    private readonly tracker: RequestTracker,
    readonly input: TrackInput,
    id: string,
  ) {
    this.info = {
      id,
      requestId: input.origin?.requestId ?? null,
      model: input.model,
      kind: input.kind,
      state: "queued",
      keyName: input.origin?.keyName ?? null,
      keyId: input.origin?.keyId ?? null,
      tokens: 0,
      arrivedAt: Date.now(),
      startedAt: null,
    };
    const outer = input.signal;
    if (outer?.aborted) this.controller.abort(outer.reason);
    else outer?.addEventListener("abort", () => this.controller.abort(outer.reason), { once: true });
  }

  /** Fires when the client goes away or an admin cancels the request. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** It got a slot (its model may have been loaded for it). */
  started(): void {
    if (this.ended || this.info.state === "running") return;
    this.info.state = "running";
    this.info.startedAt = Date.now();
    this.tracker.onStarted(this);
  }

  /** The rendered prompt (kept only when traces capture content). */
  prompt(text: string | number[]): void {
    if (this.tracker.capturesContent) this.inputText = typeof text === "string" ? text : JSON.stringify(text);
  }

  /** `n` more tokens were generated (`text` is kept only when traces capture content). */
  tokens(n: number, text: string): void {
    this.info.tokens += n;
    if (this.tracker.capturesContent) this.outputText += text;
  }

  /** It ended; idempotent. */
  finish(result: TrackedOutcome): void {
    if (this.ended) return;
    this.ended = true;
    this.tracker.onFinished(this, result);
  }

  /** The caller read the last chunk (or stopped reading): the captured output is complete. */
  endOfStream(): void {
    this.streamEnded = true;
    const trace = this.pendingTrace;
    this.pendingTrace = undefined;
    trace?.();
  }

  /** @internal Records the trace now, or, when content is captured, once the caller has read the whole output. */
  traceWhenComplete(record: (input: string | undefined, output: string | undefined) => void): void {
    if (!this.tracker.capturesContent) return record(undefined, undefined);
    const run = () => record(this.inputText, this.outputText);
    // A generation's result can arrive before its last chunks are read; the chunks carry the text.
    if (this.streamEnded || this.input.kind === "embeddings") return run();
    this.pendingTrace = run;
    setTimeout(() => this.endOfStream(), 5000).unref();
  }

  /** Cancels it (queued: leaves the queue; running: stops at the next decode step). */
  cancel(reason = "cancelled by an administrator"): void {
    this.controller.abort(new Error(reason));
  }
}

/**
 * The requests in flight, for the dashboard, `llmos top` and `/api/requests`: publishes `request.*` events, keeps
 * the running count per model that the `llmos_requests_running` gauge exports (so both show the same number),
 * and hands finished generations to the tracer when tracing is on.
 */
export class RequestTracker {
  private readonly active = new Map<string, TrackedRequest>();
  private readonly lastUsed = new Map<string, number>();
  private seq = 0;
  private tracing: Tracing | undefined;

  constructor(
    private readonly hub: EventHub,
    private readonly onRunning: (model: string, delta: 1 | -1) => void,
  ) {}

  /** Sends finished generations to `tracing` from now on. */
  useTracing(tracing: Tracing | undefined): void {
    this.tracing = tracing;
  }

  get capturesContent(): boolean {
    return this.tracing?.captureContent === true;
  }

  track(input: TrackInput): TrackedRequest {
    const id = `g${(++this.seq).toString(36)}`;
    const tracked = new TrackedRequest(this, input, id);
    this.active.set(id, tracked);
    this.hub.publish("request.queued", { ...tracked.info });
    return tracked;
  }

  /** Active requests, oldest first (copies). */
  list(): ActiveRequest[] {
    return [...this.active.values()].map((t) => ({ ...t.info }));
  }

  /** When each model last finished a request (epoch ms), since the daemon started. */
  lastUsedByModel(): Record<string, number> {
    return Object.fromEntries(this.lastUsed);
  }

  get(id: string): TrackedRequest | undefined {
    return this.active.get(id);
  }

  /** @internal */
  onStarted(t: TrackedRequest): void {
    this.onRunning(t.info.model, 1);
    this.hub.publish("request.started", { ...t.info });
  }

  /** @internal */
  onFinished(t: TrackedRequest, r: TrackedOutcome): void {
    const endedAt = Date.now();
    this.active.delete(t.info.id);
    this.lastUsed.set(t.info.model, endedAt);
    if (t.info.state === "running") this.onRunning(t.info.model, -1);
    const finished: DaemonEventMap["request.finished"] = {
      ...t.info,
      outcome: r.outcome,
      promptTokens: r.promptTokens,
      completionTokens: r.completionTokens,
      finishReason: r.finishReason,
      durationMs: endedAt - t.info.arrivedAt,
    };
    this.hub.publish("request.finished", finished);
    const tracing = this.tracing;
    if (!tracing) return;
    const info = { ...t.info };
    t.traceWhenComplete((input, output) =>
      tracing.recordGeneration({
        operation: t.input.kind === "completion" ? "text_completion" : t.input.kind,
        requestModel: t.input.requestModel,
        responseModel: info.model,
        parent: t.input.origin?.span,
        request: t.input.params ?? {},
        responseId: t.input.origin?.responseId ?? info.requestId,
        finishReason: r.finishReason,
        inputTokens: r.promptTokens,
        outputTokens: r.completionTokens,
        arrivedAt: info.arrivedAt,
        startedAt: info.startedAt,
        endedAt,
        loadMs: r.loadMs ?? 0,
        promptMs: r.promptMs ?? 0,
        generateMs: r.generateMs ?? 0,
        error: r.error,
        input,
        output,
      }),
    );
  }
}
