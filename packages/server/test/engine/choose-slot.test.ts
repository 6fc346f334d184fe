/**
 * The prompt cache's slot choice, as a pure function over snapshots (no model): which slot a prompt runs on, what
 * it reuses, when a shared prefix is copied instead of another conversation's cache being cut.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { chooseSlot, commonPrefixLength, type SlotSnapshot } from "../../src/engine/prompt-cache/choose-slot.js";

const OPTS = { reuse: true, copyCostTokens: 32, minMatchFraction: 0.1 };
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
const slot = (id: number, tokens: number[], lastUsed = 0, busy = false): SlotSnapshot => ({
  id,
  tokens,
  busy,
  lastUsed,
});
const empty = (id: number) => slot(id, []);

describe("commonPrefixLength", () => {
  test("counts equal leading tokens", () => {
    assert.equal(commonPrefixLength([1, 2, 3], [1, 2, 4]), 2);
    assert.equal(commonPrefixLength([1, 2], [1, 2, 3]), 2);
    assert.equal(commonPrefixLength([], [1]), 0);
    assert.equal(commonPrefixLength(Int32Array.from([5, 6]), [5, 6]), 2);
  });
});

describe("chooseSlot", () => {
  test("every slot busy: no choice", () => {
    assert.equal(chooseSlot([slot(0, [1], 1, true)], [1, 2], OPTS), null);
  });

  test("nothing cached: the lowest empty slot, nothing reused", () => {
    assert.deepEqual(chooseSlot([empty(0), empty(1)], range(1, 50), OPTS), { seqId: 0, reuse: 0, copyFrom: null });
  });

  test("a continuing conversation stays on its slot and reuses everything it holds", () => {
    const conversation = range(1, 300); // prompt + answer of the previous turn
    const next = [...conversation, ...range(1000, 40)];
    const choice = chooseSlot([empty(0), slot(1, conversation, 5), slot(2, range(500, 80), 6)], next, OPTS);
    assert.deepEqual(choice, { seqId: 1, reuse: 300, copyFrom: null });
  });

  test("a re-tokenized tail (the last few cached tokens differ) still stays in place", () => {
    const cached = range(1, 300);
    const next = [...range(1, 298), 7777, ...range(2000, 30)];
    assert.deepEqual(chooseSlot([empty(0), slot(1, cached, 3)], next, OPTS), { seqId: 1, reuse: 298, copyFrom: null });
  });

  test("the whole prompt cached: all but the last token are reused", () => {
    const prompt = range(1, 20);
    assert.deepEqual(chooseSlot([slot(0, [...prompt, 99, 98], 1)], prompt, OPTS), {
      seqId: 0,
      reuse: 19,
      copyFrom: null,
    });
    assert.deepEqual(chooseSlot([slot(0, prompt, 1)], prompt, OPTS), { seqId: 0, reuse: 19, copyFrom: null });
  });

  test("a new conversation sharing a system prompt gets it copied to a free slot; the other keeps its tail", () => {
    const system = range(1, 1000);
    const first = [...system, ...range(5000, 120)]; // first conversation: system prompt, question, answer
    const second = [...system, ...range(9000, 30)];
    assert.deepEqual(chooseSlot([slot(0, first, 1), empty(1), empty(2)], second, OPTS), {
      seqId: 1,
      reuse: 1000,
      copyFrom: 0,
    });
  });

  test("a busy slot lends its prefix while it generates", () => {
    const system = range(1, 1000);
    const running = slot(0, [...system, ...range(5000, 10)], 1, true);
    assert.deepEqual(chooseSlot([running, empty(1)], [...system, 42], OPTS), { seqId: 1, reuse: 1000, copyFrom: 0 });
  });

  test("copies are not worth it for a short tail, and never happen when they cost Infinity", () => {
    const system = range(1, 1000);
    const cached = [...system, ...range(5000, 10)];
    const next = [...system, ...range(9000, 30)];
    // Cutting 10 tokens costs less than a copy (32).
    assert.deepEqual(chooseSlot([slot(0, cached, 1), empty(1)], next, OPTS), { seqId: 0, reuse: 1000, copyFrom: null });
    const long = [...system, ...range(5000, 200)];
    assert.deepEqual(chooseSlot([slot(0, long, 1), empty(1)], next, { ...OPTS, copyCostTokens: Infinity }), {
      seqId: 0,
      reuse: 1000,
      copyFrom: null,
    });
  });

  test("interleaved conversations each find their own slot", () => {
    const convs = [0, 1, 2, 3].map((c) => range(c * 10_000 + 1, 400));
    const slots = convs.map((tokens, id) => slot(id, tokens, 10 - id));
    for (let c = 0; c < 4; c++) {
      const next = [...convs[c]!, ...range(90_000, 25)];
      assert.deepEqual(chooseSlot(slots, next, OPTS), { seqId: c, reuse: 400, copyFrom: null });
    }
  });

  test("all slots full and nothing shared: the least recently used slot is overwritten", () => {
    const slots = [slot(0, range(1, 50), 7), slot(1, range(100, 500), 2), slot(2, range(1000, 20), 9)];
    assert.deepEqual(chooseSlot(slots, range(50_000, 40), OPTS), { seqId: 1, reuse: 0, copyFrom: null });
  });

  test("sharing only a chat header (less than 10% of the prompt) is not a match", () => {
    const header = [1, 2, 3];
    const slots = [slot(0, [...header, ...range(100, 50)], 8), slot(1, [...range(700, 60)], 1)];
    // LRU is slot 1; the 3 shared tokens with slot 0 do not make it the choice.
    assert.deepEqual(chooseSlot(slots, [...header, ...range(5000, 60)], OPTS), { seqId: 1, reuse: 0, copyFrom: null });
  });

  test("every slot sharing a system prompt: the one that loses the least is cut", () => {
    const system = range(1, 500);
    const slots = [
      slot(0, [...system, ...range(1000, 300)], 1),
      slot(1, [...system, ...range(2000, 40)], 2),
      slot(2, [...system, ...range(3000, 200)], 3),
    ];
    assert.deepEqual(chooseSlot(slots, [...system, ...range(9000, 10)], OPTS), {
      seqId: 1,
      reuse: 500,
      copyFrom: null,
    });
  });

  test("opting out: a slot is chosen (empty first, then LRU) and nothing is reused", () => {
    const prompt = range(1, 30);
    assert.deepEqual(chooseSlot([slot(0, prompt, 5), empty(1)], prompt, { ...OPTS, reuse: false }), {
      seqId: 1,
      reuse: 0,
      copyFrom: null,
    });
    assert.deepEqual(chooseSlot([slot(0, prompt, 5), slot(1, [7], 2)], prompt, { ...OPTS, reuse: false }), {
      seqId: 1,
      reuse: 0,
      copyFrom: null,
    });
  });

  test("a one-token prompt reuses nothing (its token must be evaluated)", () => {
    assert.deepEqual(chooseSlot([slot(0, [1, 2, 3], 1)], [1], OPTS), { seqId: 0, reuse: 0, copyFrom: null });
  });
});
