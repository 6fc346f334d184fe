import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Span,
  type Tracer,
} from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
  ATTR_URL_PATH,
} from "@opentelemetry/semantic-conventions";
import { GEN_AI } from "./gen-ai-attributes.js";

/** What a finished generation (or embedding call) tells the tracer; times are epoch milliseconds. */
export interface GenerationSpanInput {
  operation: "chat" | "text_completion" | "embeddings";
  requestModel: string;
  responseModel: string;
  /** The HTTP request's server span, when the request came through the traced HTTP layer. */
  parent?: Span | undefined;
  request: { maxTokens?: number | undefined; temperature?: number; topP?: number; seed?: number | undefined };
  responseId: string | null;
  finishReason: string | null;
  inputTokens: number;
  outputTokens: number;
  arrivedAt: number;
  /** When it got a slot (null: it never did). */
  startedAt: number | null;
  endedAt: number;
  loadMs: number;
  promptMs: number;
  generateMs: number;
  error?: string | undefined;
  /** Prompt and completion text, only when content capture is on. */
  input?: string | undefined;
  output?: string | undefined;
}

export interface TracingOptions {
  /** OTLP/HTTP base URL; spans go to `<endpoint>/v1/traces`. */
  endpoint: string;
  serviceVersion: string;
  captureContent: boolean;
}

/**
 * OpenTelemetry traces over OTLP/HTTP (off unless `LLMOS_OTLP_ENDPOINT` is set): a server span per HTTP request
 * and, under it, a GenAI span per generation (`chat {model}`, `text_completion {model}`, `embeddings {model}`) with
 * the GenAI semantic conventions' attributes and children for queue wait, model load, prompt processing and
 * generation. The GenAI spans are written when the generation ends, with the times it measured, so tracing adds
 * no work while tokens flow. Spans are exported in batches in the background and dropped when the queue is full:
 * an unreachable collector never slows a request. The provider is not registered globally (one per daemon).
 */
export class Tracing {
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;
  readonly captureContent: boolean;

  constructor(options: TracingOptions) {
    this.captureContent = options.captureContent;
    const exporter = new OTLPTraceExporter({ url: `${options.endpoint}/v1/traces`, timeoutMillis: 5000 });
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({
        [ATTR_SERVICE_NAME]: "llmos",
        [ATTR_SERVICE_VERSION]: options.serviceVersion,
      }),
      spanProcessors: [
        new BatchSpanProcessor(exporter, { scheduledDelayMillis: 500, maxQueueSize: 4096, maxExportBatchSize: 512 }),
      ],
    });
    this.tracer = this.provider.getTracer("llmos", options.serviceVersion);
  }

  /** The server span of an HTTP request (ended by `endServerSpan`). */
  startServerSpan(method: string, path: string): Span {
    return this.tracer.startSpan(method, {
      kind: SpanKind.SERVER,
      attributes: { [ATTR_HTTP_REQUEST_METHOD]: method, [ATTR_URL_PATH]: path },
    });
  }

  /** Ends a server span; with the matched route, the span is named `{method} {route}` as the HTTP conventions ask. */
  endServerSpan(span: Span, method: string, route: string | undefined, status: number): void {
    if (route) {
      span.setAttribute(ATTR_HTTP_ROUTE, route);
      span.updateName(`${method} ${route}`);
    }
    span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
    if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  }

  /** Writes the GenAI span of a finished generation and its child spans. */
  recordGeneration(g: GenerationSpanInput): void {
    const ctx = g.parent ? trace.setSpan(ROOT_CONTEXT, g.parent) : ROOT_CONTEXT;
    const attributes: Attributes = {
      [GEN_AI.operationName]: g.operation,
      [GEN_AI.providerName]: "llmos",
      [GEN_AI.requestModel]: g.requestModel,
      [GEN_AI.responseModel]: g.responseModel,
      [GEN_AI.usageInputTokens]: g.inputTokens,
    };
    if (g.operation !== "embeddings") attributes[GEN_AI.usageOutputTokens] = g.outputTokens;
    if (g.request.maxTokens !== undefined) attributes[GEN_AI.requestMaxTokens] = g.request.maxTokens;
    if (g.request.temperature !== undefined) attributes[GEN_AI.requestTemperature] = g.request.temperature;
    if (g.request.topP !== undefined) attributes[GEN_AI.requestTopP] = g.request.topP;
    if (g.request.seed !== undefined) attributes[GEN_AI.requestSeed] = g.request.seed;
    if (g.responseId) attributes[GEN_AI.responseId] = g.responseId;
    if (g.finishReason) attributes[GEN_AI.responseFinishReasons] = [g.finishReason];
    if (this.captureContent && g.input !== undefined)
      attributes[GEN_AI.inputMessages] = JSON.stringify([
        { role: "user", parts: [{ type: "text", content: g.input }] },
      ]);
    if (this.captureContent && g.output !== undefined)
      attributes[GEN_AI.outputMessages] = JSON.stringify([
        { role: "assistant", parts: [{ type: "text", content: g.output }], finish_reason: g.finishReason ?? "" },
      ]);
    const span = this.tracer.startSpan(
      `${g.operation} ${g.responseModel}`,
      { kind: SpanKind.INTERNAL, startTime: g.arrivedAt, attributes },
      ctx,
    );
    const child = trace.setSpan(ctx, span);
    const sub = (name: string, start: number, end: number) =>
      this.tracer.startSpan(name, { startTime: start }, child).end(Math.max(start, end));
    const slotAt = g.startedAt ?? g.endedAt;
    sub("queue wait", g.arrivedAt, slotAt);
    if (g.loadMs > 0) sub("model load", slotAt - g.loadMs, slotAt);
    if (g.startedAt !== null && g.operation !== "embeddings") {
      sub("prompt processing", slotAt, slotAt + g.promptMs);
      sub("generation", slotAt + g.promptMs, Math.min(g.endedAt, slotAt + g.promptMs + g.generateMs));
    }
    if (g.error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: g.error });
      span.setAttribute("error.type", g.error);
    }
    span.end(g.endedAt);
  }

  /** Exports what is queued and stops; gives up after `waitMs` so a collector that never answers cannot hold up a stop. */
  async shutdown(waitMs = 1000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.provider.shutdown().catch(() => undefined),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs).unref())),
    ]);
    clearTimeout(timer);
  }
}
