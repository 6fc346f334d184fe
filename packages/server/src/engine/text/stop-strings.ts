/**
 * Streams text while watching for stop strings: text that could still become the start of a stop string is
 * held back, so nothing emitted is ever retracted, and the stop string itself is never emitted.
 */
export class StopStringFilter {
  private held = "";
  private readonly stops: string[];

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  /** Adds generated text; returns the text safe to emit and whether a stop string was found. */
  push(text: string): { text: string; stopped: boolean } {
    this.held += text;
    if (this.stops.length === 0) {
      const out = this.held;
      this.held = "";
      return { text: out, stopped: false };
    }
    let first = -1;
    for (const stop of this.stops) {
      const at = this.held.indexOf(stop);
      if (at !== -1 && (first === -1 || at < first)) first = at;
    }
    if (first !== -1) {
      const out = this.held.slice(0, first);
      this.held = "";
      return { text: out, stopped: true };
    }
    const keep = this.longestPendingSuffix();
    const out = this.held.slice(0, this.held.length - keep);
    this.held = this.held.slice(this.held.length - keep);
    return { text: out, stopped: false };
  }

  /** Text held back at the end of a generation that did not stop on a stop string. */
  flush(): string {
    const out = this.held;
    this.held = "";
    return out;
  }

  private longestPendingSuffix(): number {
    let best = 0;
    for (const stop of this.stops) {
      const max = Math.min(stop.length - 1, this.held.length);
      for (let n = max; n > best; n--) {
        if (this.held.endsWith(stop.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}

/**
 * Turns tokens into text incrementally without splitting multi-byte characters: pieces that end in an
 * incomplete UTF-8 sequence (decoded as U+FFFD) wait for the next token, up to a few tokens.
 */
export class IncrementalDetokenizer {
  private pending: number[] = [];

  constructor(private readonly detokenize: (tokens: number[]) => string) {}

  push(token: number): string {
    this.pending.push(token);
    const text = this.detokenize(this.pending);
    if (text.endsWith("\uFFFD") && this.pending.length < 4) return "";
    this.pending = [];
    return text;
  }

  flush(): string {
    if (this.pending.length === 0) return "";
    const text = this.detokenize(this.pending);
    this.pending = [];
    return text;
  }
}
