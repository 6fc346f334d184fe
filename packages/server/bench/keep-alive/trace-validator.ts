/**
 * Re-measures a trace's parameters from its requests and compares them with its spec: the total rate and the
 * Zipf exponent of popularity; per periodic model its period and jitter; per bursty model its burst size, the gap
 * within bursts and the Pareto shape of the gaps between them (Hill's estimator at the spec's scale); the diurnal
 * amplitude of the Poisson models (over whole days); the log-normal median and sigma of prompt and output lengths;
 * the share of requests with a keep_alive. Each is checked within a relative tolerance (10% by default).
 */
import type { Trace } from "./trace-format.js";
import { burstOffScale, modelRates } from "./trace-spec.js";

export interface MeasuredParameter {
  parameter: string;
  asked: number;
  measured: number;
  /** |measured - asked| / asked (absolute difference when asked is 0). */
  error: number;
  /** Samples the measurement rests on. */
  samples: number;
  ok: boolean;
}

export function validateTrace(trace: Trace, tolerance = 0.1): MeasuredParameter[] {
  const { spec, requests } = trace;
  const out: MeasuredParameter[] = [];
  const check = (parameter: string, asked: number, measured: number, samples: number) => {
    const error = asked === 0 ? Math.abs(measured) : Math.abs(measured - asked) / Math.abs(asked);
    out.push({ parameter, asked, measured, error, samples, ok: Number.isFinite(measured) && error <= tolerance });
  };
  const byModel = new Map<string, number[]>(spec.models.map((m) => [m.name, []]));
  for (const r of requests) byModel.get(r.model)!.push(r.t);
  check("requests per second", spec.requestsPerSecond, requests.length / (spec.durationMs / 1000), requests.length);
  if (spec.models.length >= 3) {
    const counts = spec.models.map((m) => byModel.get(m.name)!.length);
    check("zipf exponent", spec.zipf, zipfExponent(counts), requests.length);
  }
  const rates = modelRates(spec);
  spec.models.forEach((m, i) => {
    const times = byModel.get(m.name)!;
    const gaps = times.slice(1).map((t, k) => t - times[k]!);
    const p = m.pattern;
    if (p.kind === "periodic" && gaps.length >= 2) {
      const period = 1 / rates[i]!;
      check(`${m.name} period ms`, period, median(gaps), gaps.length);
      // Consecutive arrivals each carry independent noise: a gap's variance is twice an arrival's.
      if (p.jitter > 0) check(`${m.name} jitter`, p.jitter, std(gaps) / Math.SQRT2 / period, gaps.length);
    }
    if (p.kind === "bursty" && gaps.length >= 2) {
      const xm = burstOffScale(p, rates[i]!);
      const within = gaps.filter((g) => g < xm);
      const between = gaps.filter((g) => g >= xm);
      check(`${m.name} burst size`, p.burstSize, times.length / (between.length + 1), between.length + 1);
      check(`${m.name} gap in bursts ms`, p.inBurstGapMs, mean(within), within.length);
      const hill = between.length / between.reduce((n, g) => n + Math.log(g / xm), 0);
      check(`${m.name} pareto alpha`, p.paretoAlpha, hill, between.length);
    }
  });
  const poisson = spec.models.filter((m) => m.pattern.kind === "poisson").map((m) => m.name);
  const days = Math.floor(spec.durationMs / spec.dayMs);
  if (poisson.length > 0 && days >= 1) {
    const phases = poisson
      .flatMap((n) => byModel.get(n)!)
      .filter((t) => t < days * spec.dayMs)
      .map((t) => (2 * Math.PI * t) / spec.dayMs);
    // Density (1 + A sin phase) / 2 pi: the mean of sin(phase) is A / 2.
    const s = mean(phases.map(Math.sin));
    const c = mean(phases.map(Math.cos));
    check("diurnal amplitude", spec.diurnalAmplitude, 2 * Math.hypot(s, c), phases.length);
  }
  for (const [what, d, values] of [
    ["prompt tokens", spec.promptTokens, requests.map((r) => r.promptTokens)],
    ["output tokens", spec.outputTokens, requests.map((r) => r.maxTokens)],
  ] as const) {
    const logs = values.map(Math.log);
    check(`${what} median`, d.median, Math.exp(mean(logs)), logs.length);
    check(`${what} sigma`, d.sigma, std(logs), logs.length);
  }
  if (spec.keepAlive) {
    const share = requests.filter((r) => r.keepAliveMs !== undefined).length / Math.max(1, requests.length);
    check("keep_alive share", spec.keepAlive.share, share, requests.length);
  }
  return out;
}

/** The slope of log(count) against log(rank), negated (least squares). */
export function zipfExponent(counts: readonly number[]): number {
  const pts = counts.map((c, i) => [Math.log(i + 1), Math.log(Math.max(c, 0.5))] as const);
  const mx = mean(pts.map((p) => p[0]));
  const my = mean(pts.map((p) => p[1]));
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of pts) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  return -sxy / sxx;
}

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

function std(xs: readonly number[]): number {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((n, x) => n + (x - m) ** 2, 0) / Math.max(1, xs.length - 1));
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
