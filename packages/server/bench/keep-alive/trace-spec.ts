/**
 * The parameters of a synthetic request trace, shaped after published production traces (Azure Functions,
 * "Serverless in the Wild"; LLM serving traces such as Azure LLM inference and BurstGPT): a Zipf-like popularity
 * over models; per model, arrivals that are periodic (timers, batch jobs), Poisson (independent users, following a
 * diurnal cycle), or bursty on/off (agents, scripts) with heavy-tailed (Pareto) gaps between bursts; log-normal
 * prompt and output lengths. Time is compressed: `timeScale` real seconds per trace second for the gaps, and a
 * whole day in `dayMs`.
 */

export type ArrivalPattern =
  /** Independent arrivals; the rate follows the diurnal cycle. */
  | { kind: "poisson" }
  /** One arrival per period (1 / the model's rate), each shifted by normal noise of `jitter` x the period. */
  | { kind: "periodic"; jitter: number }
  /**
   * Bursts of `burstSize` requests on average (geometric), `inBurstGapMs` apart on average (exponential); the
   * gaps between bursts are Pareto with shape `paretoAlpha` (heavy-tailed), scaled so that the model gets its rate.
   */
  | { kind: "bursty"; burstSize: number; inBurstGapMs: number; paretoAlpha: number };

export interface LengthSpec {
  median: number;
  sigma: number;
  max?: number;
}

export interface TraceModelSpec {
  /** The model name requests use (as the daemon knows it). */
  name: string;
  pattern: ArrivalPattern;
}

export interface TraceSpec {
  seed: number;
  durationMs: number;
  /** Most popular first: model i (from 1) gets a share of requests proportional to 1 / i^zipf. */
  models: TraceModelSpec[];
  zipf: number;
  /** Mean requests per second over all models. */
  requestsPerSecond: number;
  /** The diurnal cycle's period (a day, compressed). */
  dayMs: number;
  /** Poisson models' rate is the mean x (1 + amplitude x sin(2 pi t / dayMs)); 0..1. */
  diurnalAmplitude: number;
  /** Log-normal: the median and the standard deviation of the logarithm, cut at `max` (the context's room). */
  promptTokens: LengthSpec;
  outputTokens: LengthSpec;
  /** A share of requests carries an explicit keep_alive of `ms`. */
  keepAlive?: { share: number; ms: number };
  /** Real seconds one second of the trace stands for (a fixed keep-alive of 5 minutes becomes 300 / timeScale s). */
  timeScale: number;
}

/** Each model's mean rate (requests per ms) from the Zipf shares. */
export function modelRates(spec: TraceSpec): number[] {
  const weights = spec.models.map((_, i) => 1 / (i + 1) ** spec.zipf);
  const total = weights.reduce((a, b) => a + b, 0);
  return weights.map((w) => ((w / total) * spec.requestsPerSecond) / 1000);
}

/** The Pareto scale (minimum gap between bursts) that gives a bursty model its mean rate. */
export function burstOffScale(p: Extract<ArrivalPattern, { kind: "bursty" }>, ratePerMs: number): number {
  const cycle = p.burstSize / ratePerMs;
  const meanOff = cycle - (p.burstSize - 1) * p.inBurstGapMs;
  return (meanOff * (p.paretoAlpha - 1)) / p.paretoAlpha;
}

/** Refuses parameters that cannot be generated (e.g. bursts longer than the rate allows). */
export function checkSpec(spec: TraceSpec): void {
  const fail = (m: string) => {
    throw new RangeError(`trace spec: ${m}`);
  };
  if (!(spec.durationMs > 0)) fail("durationMs must be positive");
  if (spec.models.length === 0) fail("no models");
  if (new Set(spec.models.map((m) => m.name)).size !== spec.models.length) fail("model names repeat");
  if (!(spec.requestsPerSecond > 0)) fail("requestsPerSecond must be positive");
  if (!(spec.dayMs > 0)) fail("dayMs must be positive");
  if (!(spec.diurnalAmplitude >= 0 && spec.diurnalAmplitude <= 1)) fail("diurnalAmplitude must be in 0..1");
  if (!(spec.timeScale > 0)) fail("timeScale must be positive");
  const rates = modelRates(spec);
  spec.models.forEach((m, i) => {
    const p = m.pattern;
    if (p.kind === "periodic" && !(p.jitter >= 0 && p.jitter < 0.5)) fail(`${m.name}: jitter must be in [0, 0.5)`);
    if (p.kind === "bursty") {
      if (!(p.burstSize >= 1) || !(p.inBurstGapMs > 0) || !(p.paretoAlpha > 1))
        fail(`${m.name}: burstSize >= 1, inBurstGapMs > 0, paretoAlpha > 1`);
      if (!(burstOffScale(p, rates[i]!) > 8 * p.inBurstGapMs))
        fail(`${m.name}: bursts too long for its rate (the gaps between bursts would not stand out)`);
    }
  });
}
