/**
 * The traces the keep-alive benchmark replays. `mixed`: six models with a Zipf popularity, each with an arrival
 * pattern of production traces (Poisson following a diurnal cycle, periodic, bursty on/off); `poisson`: the same
 * models and rates with no structure at all (constant-rate Poisson), where learning has nothing to find.
 *
 * Time is compressed by `timeScale` (60: a trace second stands for a real minute, so the fixed keep-alive of five
 * minutes becomes five seconds) and a whole day by `dayMs`. Rates are set so that the periodic and bursty models'
 * gaps are longer than that keep-alive and the Poisson models' shorter, as in production where a few models are
 * hot and many are used now and then.
 */
import type { TraceSpec } from "./trace-spec.js";

export interface PresetOptions {
  seed: number;
  durationMs: number;
  /** Six model names, most popular first. */
  models: readonly string[];
  /** Real seconds per trace second (default 60). */
  timeScale?: number;
  /** The compressed day (default: the duration, one diurnal cycle per trace). */
  dayMs?: number;
}

/** The fixed keep-alive of 5 minutes at a trace's time compression. */
export function scaledKeepAliveMs(spec: Pick<TraceSpec, "timeScale">): number {
  return Math.round((5 * 60_000) / spec.timeScale);
}

function base(o: PresetOptions): Omit<TraceSpec, "models"> {
  return {
    seed: o.seed,
    durationMs: o.durationMs,
    zipf: 0.8,
    requestsPerSecond: 1.6,
    dayMs: o.dayMs ?? o.durationMs,
    diurnalAmplitude: 0.5,
    // Within 4 slots of 512 tokens: a prompt and its output always fit one slot's context.
    promptTokens: { median: 48, sigma: 0.6, max: 384 },
    outputTokens: { median: 16, sigma: 0.5, max: 96 },
    keepAlive: { share: 0.03, ms: 4000 },
    timeScale: o.timeScale ?? 60,
  };
}

export function mixedSpec(o: PresetOptions): TraceSpec {
  const [m1, m2, m3, m4, m5, m6] = sixNames(o.models);
  return {
    ...base(o),
    models: [
      { name: m1, pattern: { kind: "poisson" } },
      { name: m2, pattern: { kind: "bursty", burstSize: 6, inBurstGapMs: 400, paretoAlpha: 2.5 } },
      { name: m3, pattern: { kind: "poisson" } },
      { name: m4, pattern: { kind: "periodic", jitter: 0.03 } },
      { name: m5, pattern: { kind: "bursty", burstSize: 4, inBurstGapMs: 500, paretoAlpha: 2.5 } },
      { name: m6, pattern: { kind: "periodic", jitter: 0.03 } },
    ],
  };
}

export function poissonSpec(o: PresetOptions): TraceSpec {
  return {
    ...base(o),
    diurnalAmplitude: 0,
    models: sixNames(o.models).map((name) => ({ name, pattern: { kind: "poisson" as const } })),
  };
}

function sixNames(models: readonly string[]): [string, string, string, string, string, string] {
  if (models.length !== 6) throw new RangeError("the presets take six model names");
  return models as [string, string, string, string, string, string];
}
