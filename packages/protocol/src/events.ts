/**
 * The live event stream (`GET /api/events`, Server-Sent Events): a snapshot every few seconds plus change
 * events in between. Each SSE message has `id:` (a number that only grows; send it back as `Last-Event-ID` to
 * resume), `event:` (the `type` below) and `data:` (the JSON payload).
 */
import type { LoadedModel, PsResponse } from "./models.js";

/** One point of the live charts, computed from the same counters `/metrics` exports. */
export interface LivePoint {
  /** Epoch milliseconds. */
  t: number;
  /** Completion tokens per second over the last interval. */
  tokensPerSecond: number;
  /** Prompt tokens per second over the last interval. */
  promptTokensPerSecond: number;
  /** Generations running (holding a slot) at the sample. */
  running: number;
  /** Requests waiting for a slot at the sample. */
  queued: number;
  /** Time to first token over the last minute, seconds (bucket-interpolated like `histogram_quantile`); null without data. */
  ttftP50: number | null;
  ttftP95: number | null;
  /** HTTP requests per second over the last interval. */
  requestsPerSecond: number;
  /** Share of HTTP answers with a 5xx status over the last minute (0..1). */
  errorRate: number;
  /** Share of the node's CPU time that was busy over the last interval (0..1). */
  cpuBusy: number;
}

/** A request the daemon is working on (queued or generating). */
export interface ActiveRequest {
  /** Generation id (one HTTP request asking for n choices has n). */
  id: string;
  /** The HTTP request's id (`x-request-id`). */
  requestId: string | null;
  model: string;
  kind: "chat" | "completion" | "embeddings";
  state: "queued" | "running";
  /** Name of the API key that sent it; null without a key. */
  keyName: string | null;
  keyId: string | null;
  /** Tokens generated so far. */
  tokens: number;
  /** Epoch ms when it arrived, and when it got a slot (null while queued). */
  arrivedAt: number;
  startedAt: number | null;
}

/** The node's resources. */
export interface NodeSnapshot {
  memory: { totalBytes: number; availableBytes: number };
  cpu: { cores: number; model: string; loadAverage1m: number };
  gpus: Array<{ name: string; totalVramBytes: number; freeVramBytes: number }>;
  /** The models' memory budget and what loaded models reserve of it (estimates). */
  budget: { budgetBytes: number; reservedBytes: number };
}

/** The whole picture, sent first on connect and then every interval. */
export interface DaemonSnapshot {
  time: number;
  version: string;
  node: NodeSnapshot;
  /** Loaded models as `GET /api/ps` shows them (empty for a key without `models:read`). */
  models: LoadedModel[];
  queue: { total: number; capacity: number };
  /** The keep-alive policy in use, as `GET /api/ps` reports it. */
  policy?: PsResponse["policy"];
  /** When each model last finished a request since the daemon started (epoch ms; empty without `models:read`). */
  lastUsed: Record<string, number>;
  /** Active requests (a key without `admin` sees only its own). */
  requests: ActiveRequest[];
  /** The latest chart point. */
  point: LivePoint;
  /** Earlier points (up to 10 minutes): only in the first snapshot of a connection. */
  history?: LivePoint[];
  /** What the connected credential may do, so a dashboard shows only the buttons that work. */
  access: { admin: boolean; modelsWrite: boolean; modelsRead: boolean; inference: boolean; metrics: boolean };
}

/** A log line the daemon wrote (pino's JSON, with secrets redacted), for the live tail. */
export interface LogEvent {
  time: number;
  level: "trace" | "debug" | "info" | "warn" | "error" | "fatal";
  msg: string;
  /** Other fields of the line (component, model, reqId, ...). */
  fields: Record<string, unknown>;
}

/** Every event type and its payload. */
export interface DaemonEventMap {
  snapshot: DaemonSnapshot;
  /** `prewarm`: loaded ahead of a predicted request (learned keep-alive policy). */
  "model.loading": { model: string; prewarm?: boolean };
  "model.loaded": { model: string; loadMs: number; estimateBytes: number | null; rssBytes: number | null };
  "model.load_failed": { model: string; error: string };
  /**
   * `reason`: `evicted` or `oom_retry` (memory pressure), `expired` (keep-alive), `unload`, `shutdown`, `crashed`,
   * `oom` (the kernel stopped the runner at its memory limit).
   */
  "model.unloaded": { model: string; reason: string };
  "request.queued": ActiveRequest;
  "request.started": ActiveRequest;
  "request.finished": ActiveRequest & {
    outcome: "ok" | "error" | "cancelled";
    promptTokens: number;
    completionTokens: number;
    finishReason: string | null;
    durationMs: number;
  };
  log: LogEvent;
}

export type DaemonEventType = keyof DaemonEventMap;

/** One event as a typed value (what a client gets after parsing an SSE message). */
export type DaemonEvent = {
  [K in DaemonEventType]: { id: number; type: K; data: DaemonEventMap[K] };
}[DaemonEventType];
