/** Which waiting prompts go into the next decode step (prompt-order.ts), over sequences' progress alone. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { promptTakes } from "../../src/engine/llama-ffi/prompt-order.js";

/** A sequence started at `startedAt` with `length` prompt tokens, `done` of them evaluated. */
const seq = (name: string, startedAt: number, length: number, done = 0) => ({
  name,
  startedAt,
  prompt: { length },
  promptDone: done,
});

/** The takes by sequence name, in the map's order. */
const named = (takes: Map<{ name: string }, number>) => [...takes].map(([r, n]) => `${r.name}:${n}`);

describe("prompt order", () => {
  test("the earliest-started prompt takes the budget first, whatever its sequence id", () => {
    // Listed by sequence id (the batch's order), started in another order.
    const running = [seq("b", 2, 100), seq("a", 1, 100), seq("c", 3, 100)];
    assert.deepEqual(named(promptTakes(running, 128)), ["a:100", "b:28"]);
    assert.deepEqual(named(promptTakes(running, 512)), ["a:100", "b:100", "c:100"]);
  });

  test("a prompt longer than the budget takes all of it; the rest of it comes in the next steps", () => {
    const running = [seq("a", 1, 700), seq("b", 2, 10)];
    assert.deepEqual(named(promptTakes(running, 512)), ["a:512"]);
    running[0]!.promptDone = 512;
    assert.deepEqual(named(promptTakes(running, 512)), ["a:188", "b:10"]);
  });

  test("sequences whose prompt is done or cached take nothing", () => {
    const running = [seq("done", 1, 40, 40), seq("cached", 2, 40, 39), seq("new", 3, 40)];
    assert.deepEqual(named(promptTakes(running, 512)), ["cached:1", "new:40"]);
  });
});
