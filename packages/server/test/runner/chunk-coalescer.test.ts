import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { GenerateChunk } from "../../src/engine/engine.js";
import { ChunkCoalescer } from "../../src/runner/chunk-coalescer.js";

/** A coalescer on a hand-driven clock; timers fire when the clock passes them. */
function harness(intervalMs: number) {
  let now = 0;
  const timers: Array<{ at: number; fn: () => void; live: boolean }> = [];
  const sent: Array<{ at: number; chunk: GenerateChunk }> = [];
  const c = new ChunkCoalescer({
    intervalMs,
    send: (chunk) => sent.push({ at: now, chunk }),
    now: () => now,
    setTimer: (fn, ms) => {
      const t = { at: now + ms, fn, live: true };
      timers.push(t);
      return t;
    },
    clearTimer: (t) => void ((t as { live: boolean }).live = false),
  });
  const advance = (ms: number) => {
    const until = now + ms;
    for (;;) {
      const next = timers.filter((t) => t.live && t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      now = next.at;
      next.live = false;
      next.fn();
    }
    now = until;
  };
  return { c, sent, advance };
}

const tok = (text: string): GenerateChunk => ({ text, tokens: 1 });

describe("ChunkCoalescer", () => {
  it("sends the first chunk at once and merges the ones that follow within the interval", () => {
    const h = harness(20);
    h.c.push(tok("a"));
    assert.deepEqual(
      h.sent.map((s) => s.chunk.text),
      ["a"],
      "first token is not held",
    );
    for (const t of ["b", "c", "d"]) {
      h.advance(3);
      h.c.push(tok(t));
    }
    assert.equal(h.sent.length, 1, "tokens within the interval are held");
    h.advance(20);
    assert.deepEqual(
      h.sent.map((s) => [s.at, s.chunk.text, s.chunk.tokens]),
      [
        [0, "a", 1],
        [20, "bcd", 3],
      ],
    );
  });

  it("streams token by token when tokens are slower than the interval", () => {
    const h = harness(20);
    for (const t of ["a", "b", "c"]) {
      h.c.push(tok(t));
      h.advance(25);
    }
    assert.deepEqual(
      h.sent.map((s) => s.chunk.text),
      ["a", "b", "c"],
    );
  });

  it("flush sends what is held (before the end of a generation) and cancels the timer", () => {
    const h = harness(20);
    h.c.push(tok("a"));
    h.advance(1);
    h.c.push({ text: "b", tokens: 1, logprobs: [{ token: "b", logprob: -1, top: [] }] });
    h.c.push({ text: "c", tokens: 1, logprobs: [{ token: "c", logprob: -2, top: [] }] });
    h.c.flush();
    assert.deepEqual(h.sent[1]!.chunk, {
      text: "bc",
      tokens: 2,
      logprobs: [
        { token: "b", logprob: -1, top: [] },
        { token: "c", logprob: -2, top: [] },
      ],
    });
    h.advance(100);
    assert.equal(h.sent.length, 2, "the cancelled timer sends nothing more");
    h.c.flush();
    assert.equal(h.sent.length, 2, "flushing with nothing held sends nothing");
  });

  it("interval 0 sends every chunk", () => {
    const h = harness(0);
    for (const t of ["a", "b", "c"]) h.c.push(tok(t));
    assert.deepEqual(
      h.sent.map((s) => s.chunk.text),
      ["a", "b", "c"],
    );
  });
});
