/** Which waiting prompts go into the next decode step (prompt-order.ts), over sequences' progress alone. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { promptTakes, SHARED_STEP_MIN_TOKENS } from "../../src/engine/llama-ffi/prompt-order.js";

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
  test("on the CPU, the earliest prompt goes first and a step that completes it takes no later one", () => {
    // Listed by sequence id (the batch's order), started in another order.
    const running = [seq("b", 2, 87), seq("a", 1, 87), seq("c", 3, 87)];
    assert.deepEqual(named(promptTakes(running, 512, 0, true)), ["a:87"]);
    running[1]!.promptDone = 87;
    assert.deepEqual(named(promptTakes(running, 512, 1, true)), ["b:87"]);
  });

  test("a prompt longer than the budget takes all of it; the rest of it comes in the next steps", () => {
    const running = [seq("a", 1, 700), seq("b", 2, 10)];
    assert.deepEqual(named(promptTakes(running, 512, 0, true)), ["a:512"]);
    running[0]!.promptDone = 512;
    assert.deepEqual(named(promptTakes(running, 512, 0, true)), ["a:188"]);
  });

  test("short prompts share a step until it holds enough tokens", () => {
    const running = [1, 2, 3, 4, 5, 6].map((i) => seq(`s${i}`, i, 8));
    assert.equal(SHARED_STEP_MIN_TOKENS, 32);
    assert.deepEqual(named(promptTakes(running, 512, 0, true)), ["s1:8", "s2:8", "s3:8", "s4:8"]);
    // Generating sequences' tokens count toward the step.
    assert.deepEqual(named(promptTakes(running, 128, 20, true)), ["s1:8", "s2:8"]);
  });

  test("on a GPU, prompts share steps up to the budget", () => {
    const running = [seq("b", 2, 300), seq("a", 1, 300)];
    assert.deepEqual(named(promptTakes(running, 512, 0, false)), ["a:300", "b:212"]);
  });

  test("sequences whose prompt is done or cached take nothing", () => {
    const running = [seq("done", 1, 40, 40), seq("cached", 2, 40, 39), seq("new", 3, 40)];
    assert.deepEqual(named(promptTakes(running, 512, 1, true)), ["cached:1", "new:40"]);
  });
});
