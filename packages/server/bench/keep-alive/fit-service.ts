/**
 * Fits the simulator's service under load to a real replay. The calibration measures each model alone (a warm
 * request, a cold load); under a replay several models decode and load at once on the same cores and every request
 * is slower. On the first quiet run the replay's time to first token was about three times the simulated one and
 * the fixed policy evicted twice as often, so the simulator's cold starts drifted from the replay's (check 4).
 *
 * The fit replays nothing itself: it simulates the trace a real replay just ran (the learning replay, another seed
 * than the measured traces, so the measured runs stay out of the fit) at a grid of speed and load-time factors and
 * keeps the pair whose cold starts and time to first token (median and p99) come closest to the real run's.
 */
import { percentile } from "../stats.js";
import { simulate, type SimulationOptions } from "./simulator.js";

/** What a run is compared on. */
export interface ServiceStats {
  coldStarts: number;
  ttftP50Ms: number;
  ttftP99Ms: number;
}

export interface ServiceFit {
  /** Speed factor (models' tokens/s times this) and load-time factor. */
  speed: number;
  load: number;
  real: ServiceStats;
  simulated: ServiceStats;
  /** The same simulation without the factors (the solo calibration alone). */
  unfitted: ServiceStats;
}

const SPEEDS = [1, 0.7, 0.5, 0.4, 0.3, 0.25, 0.2];
const LOADS = [1, 1.5, 2, 3];

/** Distance between two runs: log ratios, cold starts counted twice (they are what the policies are judged on). */
export function serviceLoss(sim: ServiceStats, real: ServiceStats): number {
  const lr = (a: number, b: number) => Math.abs(Math.log(Math.max(1, a) / Math.max(1, b)));
  return (
    2 * lr(sim.coldStarts, real.coldStarts) + lr(sim.ttftP50Ms, real.ttftP50Ms) + lr(sim.ttftP99Ms, real.ttftP99Ms)
  );
}

export async function fitService(options: Omit<SimulationOptions, "service">, real: ServiceStats): Promise<ServiceFit> {
  const statsAt = async (speed: number, load: number): Promise<ServiceStats> => {
    const r = await simulate({ ...options, service: { speed, load } });
    const ttft = r.ttftMs.filter(Number.isFinite);
    return { coldStarts: r.coldStarts, ttftP50Ms: percentile(ttft, 50), ttftP99Ms: percentile(ttft, 99) };
  };
  let best: { speed: number; load: number; stats: ServiceStats; loss: number } | undefined;
  for (const speed of SPEEDS)
    for (const load of LOADS) {
      const stats = await statsAt(speed, load);
      const loss = serviceLoss(stats, real);
      if (!best || loss < best.loss) best = { speed, load, stats, loss };
    }
  return { speed: best!.speed, load: best!.load, real, simulated: best!.stats, unfitted: await statsAt(1, 1) };
}
