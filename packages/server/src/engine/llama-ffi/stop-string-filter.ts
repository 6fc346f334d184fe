/**
 * Streams text while watching for stop strings. Text that could still become the start of a stop string is held
 * back, so emitted text is never retracted and a stop string is never emitted.
 */
export class StopStringFilter {
  private held = "";
  private readonly stops: string[];

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  /** Add generated text; returns what is safe to emit and whether a stop string ended the text. */
  push(text: string): { text: string; stopped: boolean } {
    const all = this.held + text;
    if (this.stops.length === 0) {
      this.held = "";
      return { text: all, stopped: false };
    }
    let first = -1;
    for (const stop of this.stops) {
      const at = all.indexOf(stop);
      if (at !== -1 && (first === -1 || at < first)) first = at;
    }
    if (first !== -1) {
      this.held = "";
      return { text: all.slice(0, first), stopped: true };
    }
    const keep = this.pendingSuffixLength(all);
    this.held = all.slice(all.length - keep);
    return { text: all.slice(0, all.length - keep), stopped: false };
  }

  /** Text still held back (call when the generation ends for another reason). */
  flush(): string {
    const out = this.held;
    this.held = "";
    return out;
  }

  /** Length of the longest suffix of `s` that is a proper prefix of some stop string. */
  private pendingSuffixLength(s: string): number {
    let best = 0;
    for (const stop of this.stops) {
      for (let n = Math.min(stop.length - 1, s.length); n > best; n--) {
        if (s.endsWith(stop.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}
