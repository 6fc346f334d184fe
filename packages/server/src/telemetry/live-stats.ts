import os from "node:os";
import type { LivePoint } from "@llmos/protocol";
import type { Counter, Gauge, Histogram } from "prom-client";
import { bucketDelta, histogramQuantile, type Buckets } from "./histogram-quantile.js";
import type { Metrics } from "./metrics.js";

/** Cumulative values read from the registry at one moment. */
interface Reading {
  t: number;
  completionTokens: number;
  promptTokens: number;
  httpRequests: number;
  httpErrors: number;
  ttft: Buckets;
  cpu: { busy: number; total: number };
}

/** How far back the charts reach, and the window of the TTFT quantiles and error rate. */
const HISTORY_MS = 10 * 60_000;
const WINDOW_MS = 60_000;

/**
 * The dashboard's chart points, computed from the Prometheus metrics themselves (rates of the token and request
 * counters, quantiles of the TTFT histogram's buckets over the last minute, like `rate()` and
 * `histogram_quantile()` in Grafana), so the dashboard and `/metrics` never disagree. Samples every interval on an
 * unref'd timer and keeps ten minutes of points.
 */
export class LiveStats {
  private readonly readings: Reading[] = [];
  private readonly points: LivePoint[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sampling: Promise<LivePoint> | undefined;

  constructor(
    private readonly metrics: Metrics,
    readonly intervalMs: number,
  ) {}

  start(): void {
    if (this.timer) return;
    void this.sample();
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Points of the last ten minutes, oldest first (a copy). */
  history(): LivePoint[] {
    return this.points.slice();
  }

  /** The latest point (sampling once if there is none yet). */
  async latest(): Promise<LivePoint> {
    return this.points[this.points.length - 1] ?? this.sample();
  }

  /** Reads the registry and appends a point. Concurrent calls share one reading. */
  sample(): Promise<LivePoint> {
    this.sampling ??= this.read().finally(() => (this.sampling = undefined));
    return this.sampling;
  }

  private async read(): Promise<LivePoint> {
    const m = this.metrics;
    const [tokens, http, ttft, running, queued] = await Promise.all([
      m.tokens.get(),
      m.httpRequests.get(),
      m.timeToFirstToken.get(),
      m.requestsRunning.get(),
      m.queueDepth.get(),
    ]);
    const now: Reading = {
      t: Date.now(),
      completionTokens: sum(tokens, (l) => l.kind === "completion"),
      promptTokens: sum(tokens, (l) => l.kind === "prompt"),
      httpRequests: sum(http),
      httpErrors: sum(http, (l) => String(l.status).startsWith("5")),
      ttft: buckets(ttft),
      cpu: cpuTimes(),
    };
    const prev = this.readings[this.readings.length - 1];
    const windowStart = this.readings.find((r) => r.t >= now.t - WINDOW_MS - this.intervalMs / 2) ?? prev;
    const seconds = prev ? Math.max(0.001, (now.t - prev.t) / 1000) : 1;
    const rate = (f: (r: Reading) => number) => (prev ? Math.max(0, f(now) - f(prev)) / seconds : 0);
    const window = bucketDelta(now.ttft, windowStart?.ttft);
    const requestsInWindow = windowStart ? now.httpRequests - windowStart.httpRequests : now.httpRequests;
    const errorsInWindow = windowStart ? now.httpErrors - windowStart.httpErrors : now.httpErrors;
    const point: LivePoint = {
      t: now.t,
      tokensPerSecond: rate((r) => r.completionTokens),
      promptTokensPerSecond: rate((r) => r.promptTokens),
      running: sum(running),
      queued: sum(queued),
      ttftP50: histogramQuantile(0.5, window),
      ttftP95: histogramQuantile(0.95, window),
      requestsPerSecond: rate((r) => r.httpRequests),
      errorRate: requestsInWindow > 0 ? errorsInWindow / requestsInWindow : 0,
      cpuBusy:
        prev && now.cpu.total > prev.cpu.total ? (now.cpu.busy - prev.cpu.busy) / (now.cpu.total - prev.cpu.total) : 0,
    };
    this.readings.push(now);
    this.points.push(point);
    while (this.readings.length && this.readings[0]!.t < now.t - WINDOW_MS - 2 * this.intervalMs) this.readings.shift();
    while (this.points.length && this.points[0]!.t < now.t - HISTORY_MS) this.points.shift();
    return point;
  }
}

type MetricValues = Awaited<ReturnType<Counter["get"] | Gauge["get"] | Histogram["get"]>>;

function sum(metric: MetricValues, where: (labels: Record<string, string | number>) => boolean = () => true): number {
  let n = 0;
  for (const v of metric.values) if (where(v.labels as Record<string, string | number>)) n += v.value;
  return n;
}

/** A histogram's cumulative buckets summed over its other labels. */
function buckets(metric: MetricValues): Buckets {
  const out: Buckets = new Map();
  for (const v of metric.values) {
    const le = (v.labels as { le?: string | number }).le;
    if (le === undefined || !(v as { metricName?: string }).metricName?.endsWith("_bucket")) continue;
    const bound = le === "+Inf" ? Infinity : Number(le);
    out.set(bound, (out.get(bound) ?? 0) + v.value);
  }
  return out;
}

/** CPU time of all cores since boot (ms): busy (not idle) and total. */
function cpuTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const c of os.cpus()) {
    const t = c.times.user + c.times.nice + c.times.sys + c.times.irq + c.times.idle;
    total += t;
    busy += t - c.times.idle;
  }
  return { busy, total };
}
