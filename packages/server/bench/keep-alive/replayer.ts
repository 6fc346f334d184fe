/**
 * Replays a trace against a running daemon in real time (or `speed` times faster): each request is sent at its time
 * over the OpenAI-compatible streaming endpoint with a prompt of about its prompt length, `max_tokens` its output
 * length, greedy, and its keep_alive when it has one. Time to first token is measured at the client, from sending
 * to the first streamed text. Requests run concurrently, as the trace's arrivals overlap.
 */
import type { Trace, TraceRequest } from "./trace-format.js";

export interface ReplayOptions {
  trace: Trace;
  /** The daemon's base URL, e.g. http://127.0.0.1:11435. */
  url: string;
  apiKey?: string;
  /** Trace ms per wall ms (default 1: real time). */
  speed?: number;
  /** Called just before request `i` is sent. */
  onSend?: (r: TraceRequest, i: number) => void;
  /** Progress, every `everyMs` of trace time. */
  progress?: { everyMs: number; log: (line: string) => void };
}

export interface ReplayResult {
  /** Time to first token per request (ms; NaN for a request that failed), in trace order. */
  ttftMs: number[];
  /** Whole request time per request (ms). */
  totalMs: number[];
  failed: number;
  /** The first few failures' messages. */
  errors: string[];
  /** How late the latest request was sent against its time (ms): a busy client would distort the trace. */
  maxLateMs: number;
  wallMs: number;
}

const WORDS = "the little dog ran to a big tree and sat down in warm sun while birds sang of summer days".split(" ");

/** A prompt of roughly `tokens` tokens (one short English word is about one token for llama's vocabulary). */
export function promptOf(tokens: number): string {
  const words = ["Once", "upon", "a", "time"];
  for (let i = words.length; i < tokens; i++) words.push(WORDS[i % WORDS.length]!);
  return words.slice(0, Math.max(1, tokens)).join(" ");
}

export async function replay(o: ReplayOptions): Promise<ReplayResult> {
  const speed = o.speed ?? 1;
  const { requests } = o.trace;
  const ttft = new Array<number>(requests.length).fill(NaN);
  const total = new Array<number>(requests.length).fill(NaN);
  const errors: string[] = [];
  let failed = 0;
  let maxLate = 0;
  const start = performance.now();
  let nextProgress = o.progress?.everyMs ?? Infinity;
  const inflight: Array<Promise<void>> = [];
  for (let i = 0; i < requests.length; i++) {
    const r = requests[i]!;
    const due = start + r.t / speed;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    maxLate = Math.max(maxLate, performance.now() - due);
    if (o.progress && r.t >= nextProgress) {
      o.progress.log(
        `${Math.round(r.t / 1000)}s of ${Math.round(o.trace.spec.durationMs / 1000)}s, ${i} requests sent`,
      );
      nextProgress += o.progress.everyMs;
    }
    o.onSend?.(r, i);
    inflight.push(
      send(o, r).then(
        (t) => {
          ttft[i] = t.ttftMs;
          total[i] = t.totalMs;
        },
        (error: unknown) => {
          failed++;
          if (errors.length < 5) errors.push(`request ${i} (${r.model}): ${(error as Error).message}`);
        },
      ),
    );
  }
  await Promise.all(inflight);
  return { ttftMs: ttft, totalMs: total, failed, errors, maxLateMs: maxLate, wallMs: performance.now() - start };
}

async function send(o: ReplayOptions, r: TraceRequest): Promise<{ ttftMs: number; totalMs: number }> {
  const sent = performance.now();
  const res = await fetch(`${o.url}/v1/completions`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...(o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {}),
    },
    body: JSON.stringify({
      model: r.model,
      prompt: promptOf(r.promptTokens),
      max_tokens: r.maxTokens,
      temperature: 0,
      // Exactly max_tokens, as the simulator assumes (random-weight models may emit an end token early).
      ignore_eos: true,
      stream: true,
      ...(r.keepAliveMs !== undefined ? { keep_alive: `${r.keepAliveMs}ms` } : {}),
    }),
  });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let first = NaN;
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (!line.startsWith("data:") || line === "data: [DONE]") continue;
      const event = JSON.parse(line.slice(5)) as { error?: { message?: string } };
      if (event.error) throw new Error(event.error.message ?? "error event");
      if (Number.isNaN(first)) first = performance.now() - sent;
    }
  }
  if (Number.isNaN(first)) throw new Error("no token streamed");
  return { ttftMs: first, totalMs: performance.now() - sent };
}
