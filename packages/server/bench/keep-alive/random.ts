/** Seeded samplers over `@llmos/gguf`'s PRNG (mulberry32): the same seed gives the same draws on every machine. */
import { createPrng } from "@llmos/gguf";

export class Random {
  private readonly next: () => number;
  private spare: number | null = null;

  constructor(seed: number) {
    this.next = createPrng(seed >>> 0);
  }

  /** Uniform in (0, 1]: never 0, so logarithms and negative powers are finite. */
  uniform(): number {
    return 1 - this.next();
  }

  exponential(mean: number): number {
    return -Math.log(this.uniform()) * mean;
  }

  /** Standard normal (Box-Muller, both outputs used). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(this.uniform()));
    const a = 2 * Math.PI * this.next();
    this.spare = r * Math.sin(a);
    return r * Math.cos(a);
  }

  /** Log-normal with this median and standard deviation of the logarithm. */
  logNormal(median: number, sigma: number): number {
    return median * Math.exp(sigma * this.normal());
  }

  /** Pareto with scale `xm` (the minimum) and shape `alpha`. */
  pareto(xm: number, alpha: number): number {
    return xm * this.uniform() ** (-1 / alpha);
  }

  /** Geometric on 1, 2, 3, ... with this mean (>= 1). */
  geometric(mean: number): number {
    if (mean <= 1) return 1;
    return 1 + Math.floor(Math.log(this.uniform()) / Math.log(1 - 1 / mean));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** A seed for stream `i` of a trace seeded `seed` (streams are independent: adding a model moves no other). */
export function streamSeed(seed: number, i: number): number {
  return (Math.imul(seed >>> 0, 2654435761) ^ Math.imul(i + 1, 40503)) >>> 0;
}
