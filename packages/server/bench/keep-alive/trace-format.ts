/**
 * Request traces as JSON lines: a header line (`{"type":"llmos-trace","version":1,"spec":{...}}`, the generator's
 * parameters, whose `models` name every model the trace may use), then one request per line, in time order:
 *
 *   {"t":1520,"model":"ka-m1","promptTokens":48,"maxTokens":21}
 *   {"t":1777,"model":"ka-m3","promptTokens":90,"maxTokens":17,"keepAliveMs":4000}
 *
 * `t` is ms from the trace's start. `parseTrace` refuses a malformed line, an unknown model or a time earlier than
 * the line before, naming the line.
 */
import type { TraceSpec } from "./trace-spec.js";

export interface TraceRequest {
  /** Ms from the start of the trace. */
  t: number;
  model: string;
  promptTokens: number;
  maxTokens: number;
  /** An explicit keep_alive sent with the request (ms). */
  keepAliveMs?: number;
}

export interface Trace {
  spec: TraceSpec;
  requests: TraceRequest[];
}

export const TRACE_TYPE = "llmos-trace";
export const TRACE_VERSION = 1;

export class TraceError extends Error {
  override readonly name = "TraceError";
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(`line ${line}: ${message}`);
  }
}

export function serializeTrace(trace: Trace): string {
  const lines = [JSON.stringify({ type: TRACE_TYPE, version: TRACE_VERSION, spec: trace.spec })];
  for (const r of trace.requests) lines.push(JSON.stringify(r));
  return lines.join("\n") + "\n";
}

/**
 * Reads a trace. `knownModels` (e.g. the models a daemon has) narrows the models allowed further than the
 * header's list. @throws TraceError naming the first bad line.
 */
export function parseTrace(text: string, knownModels?: ReadonlySet<string>): Trace {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  if (lines.length === 0) throw new TraceError(1, "empty trace: the header line is missing");
  const header = parseLine(lines[0]!, 1);
  if (header.type !== TRACE_TYPE || header.version !== TRACE_VERSION)
    throw new TraceError(1, `not an llmos trace header (type "${TRACE_TYPE}", version ${TRACE_VERSION})`);
  const spec = header.spec as TraceSpec | undefined;
  if (!spec || typeof spec !== "object" || !Array.isArray(spec.models))
    throw new TraceError(1, "the header has no spec with a models list");
  const models = new Set<string>();
  for (const m of spec.models) {
    if (typeof m?.name !== "string" || m.name.length === 0)
      throw new TraceError(1, "a model in the header has no name");
    if (knownModels && !knownModels.has(m.name)) throw new TraceError(1, `unknown model "${m.name}" in the header`);
    models.add(m.name);
  }
  const requests: TraceRequest[] = [];
  let last = 0;
  for (let i = 1; i < lines.length; i++) {
    const n = i + 1;
    if (lines[i]!.trim() === "") throw new TraceError(n, "empty line");
    const o = parseLine(lines[i]!, n);
    const { t, model, promptTokens, maxTokens, keepAliveMs } = o;
    if (typeof t !== "number" || !Number.isFinite(t) || t < 0)
      throw new TraceError(n, "t must be a non-negative number of ms");
    if (t < last) throw new TraceError(n, `t ${t} is earlier than the line before (${last}): lines must be in order`);
    if (typeof model !== "string" || !models.has(model))
      throw new TraceError(n, `unknown model ${JSON.stringify(model)} (the header lists ${[...models].join(", ")})`);
    if (!isCount(promptTokens)) throw new TraceError(n, "promptTokens must be a positive integer");
    if (!isCount(maxTokens)) throw new TraceError(n, "maxTokens must be a positive integer");
    if (keepAliveMs !== undefined && (typeof keepAliveMs !== "number" || !Number.isFinite(keepAliveMs)))
      throw new TraceError(n, "keepAliveMs must be a number of ms");
    const known = new Set(["t", "model", "promptTokens", "maxTokens", "keepAliveMs"]);
    const extra = Object.keys(o).find((k) => !known.has(k));
    if (extra !== undefined) throw new TraceError(n, `unknown field "${extra}"`);
    requests.push({ t, model, promptTokens, maxTokens, ...(keepAliveMs !== undefined ? { keepAliveMs } : {}) });
    last = t;
  }
  return { spec, requests };
}

function parseLine(line: string, n: number): Record<string, any> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new TraceError(n, "not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new TraceError(n, "not a JSON object");
  return value as Record<string, any>;
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 1;
}
