/**
 * Generates a request trace from its spec (trace-spec.ts), deterministically: the same spec and seed give the same
 * trace, byte for byte. Each model's arrivals come from a stream of their own; lengths and keep-alives from one
 * more, drawn in time order after the arrivals are merged.
 */
import { Random, streamSeed } from "./random.js";
import type { Trace, TraceRequest } from "./trace-format.js";
import {
  burstOffScale,
  checkSpec,
  modelRates,
  type ArrivalPattern,
  type LengthSpec,
  type TraceSpec,
} from "./trace-spec.js";

export function generateTrace(spec: TraceSpec): Trace {
  checkSpec(spec);
  const rates = modelRates(spec);
  const arrivals: Array<{ t: number; model: number }> = [];
  spec.models.forEach((m, i) => {
    const rnd = new Random(streamSeed(spec.seed, i));
    for (const t of arrivalTimes(m.pattern, rates[i]!, spec, rnd)) arrivals.push({ t: Math.round(t), model: i });
  });
  arrivals.sort((a, b) => a.t - b.t || a.model - b.model);
  const rnd = new Random(streamSeed(spec.seed, spec.models.length));
  const requests: TraceRequest[] = arrivals.map(({ t, model }) => {
    const r: TraceRequest = {
      t,
      model: spec.models[model]!.name,
      promptTokens: tokens(rnd, spec.promptTokens),
      maxTokens: tokens(rnd, spec.outputTokens),
    };
    if (spec.keepAlive && rnd.chance(spec.keepAlive.share)) r.keepAliveMs = spec.keepAlive.ms;
    return r;
  });
  return { spec, requests };
}

function tokens(rnd: Random, d: LengthSpec): number {
  return Math.min(d.max ?? Infinity, Math.max(1, Math.round(rnd.logNormal(d.median, d.sigma))));
}

/** Arrival times (ms, in [0, duration)) of one model with mean rate `rate` per ms. */
function arrivalTimes(p: ArrivalPattern, rate: number, spec: TraceSpec, rnd: Random): number[] {
  const out: number[] = [];
  const end = spec.durationMs;
  switch (p.kind) {
    case "poisson": {
      // Thinning: candidates at the peak rate, each kept with the diurnal rate's share of the peak.
      const A = spec.diurnalAmplitude;
      const peak = rate * (1 + A);
      for (let t = rnd.exponential(1 / peak); t < end; t += rnd.exponential(1 / peak))
        if (rnd.uniform() <= (1 + A * Math.sin((2 * Math.PI * t) / spec.dayMs)) / (1 + A)) out.push(t);
      return out;
    }
    case "periodic": {
      const period = 1 / rate;
      const offset = rnd.uniform() * period;
      for (let k = 0; offset + k * period < end + period; k++) {
        const t = offset + k * period + p.jitter * period * rnd.normal();
        if (t >= 0 && t < end) out.push(t);
      }
      return out.sort((a, b) => a - b);
    }
    case "bursty": {
      const xm = burstOffScale(p, rate);
      let t = rnd.uniform() * xm;
      while (t < end) {
        const n = rnd.geometric(p.burstSize);
        for (let j = 0; j < n && t < end; j++) {
          out.push(t);
          if (j < n - 1) t += rnd.exponential(p.inBurstGapMs);
        }
        t += rnd.pareto(xm, p.paretoAlpha);
      }
      return out;
    }
  }
}
