/**
 * The slot table applying slot choices to a KV memory (here a fake that records positions per sequence, and can be
 * told to behave like a memory that cannot drop part of a sequence): what each slot holds, copies, fallbacks.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { SlotTable, type KvSequenceOps } from "../../src/engine/prompt-cache/slot-table.js";

/** Positions held per sequence; `partialTrim: false` behaves like a recurrent memory. */
function fakeMemory(opts: { partialTrim?: boolean; copy?: boolean } = {}) {
  const held = new Map<number, number>(); // seq -> number of positions [0, n)
  const calls: string[] = [];
  const ops: KvSequenceOps = {
    trim(seq, from) {
      calls.push(`trim ${seq} ${from}`);
      if (opts.partialTrim === false) return false;
      held.set(seq, Math.min(held.get(seq) ?? 0, from));
      return true;
    },
    clear(seq) {
      calls.push(`clear ${seq}`);
      held.set(seq, 0);
    },
    copyPrefix(src, dst, n) {
      calls.push(`copy ${src}->${dst} ${n}`);
      if (opts.copy === false) return false;
      held.set(dst, Math.min(n, held.get(src) ?? 0));
      return true;
    },
    span(seq) {
      const n = held.get(seq) ?? 0;
      return n > 0 ? { min: 0, max: n - 1 } : null;
    },
  };
  /** Decoding `tokens` on `seq`: the memory grows, and the table is told. */
  const decode = (table: SlotTable, seq: number, tokens: number[]) => {
    held.set(seq, (held.get(seq) ?? 0) + tokens.length);
    table.append(seq, tokens);
  };
  return { ops, calls, decode };
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
const OPTS = { slots: 3, copyCostTokens: 32, minMatchFraction: 0.1 };

describe("SlotTable", () => {
  test("a finished request's cells stay; the next request of the conversation reuses them", () => {
    const mem = fakeMemory();
    const table = new SlotTable(mem.ops, OPTS);
    const first = range(1, 100);
    const a = table.admit(first, true)!;
    assert.deepEqual(a, { seqId: 0, reused: 0, copiedFrom: null });
    mem.decode(table, 0, [...first, 500, 501]); // prompt + two generated tokens
    table.release(0);
    assert.deepEqual(table.summary()[0], { id: 0, cachedTokens: 102, busy: false });
    const b = table.admit([...first, 500, 501, 900], true)!;
    assert.deepEqual(b, { seqId: 0, reused: 102, copiedFrom: null });
    assert.equal(table.free, 2);
  });

  test("a shared prefix is copied to a free slot; the copy holds exactly the prefix", () => {
    const mem = fakeMemory();
    const table = new SlotTable(mem.ops, OPTS);
    const system = range(1, 200);
    table.admit([...system, 7], true);
    mem.decode(table, 0, [...system, 7, ...range(300, 80)]);
    table.release(0);
    const b = table.admit([...system, 8, 9], true)!;
    assert.deepEqual(b, { seqId: 1, reused: 200, copiedFrom: 0 });
    assert.deepEqual(table.tokensOf(1), system);
    assert.equal(table.tokensOf(0).length, 281, "the donor keeps everything");
    assert.ok(mem.calls.includes("copy 0->1 200"));
  });

  test("a memory that cannot drop part of a sequence: the slot is cleared and nothing reused", () => {
    const mem = fakeMemory({ partialTrim: false });
    const table = new SlotTable(mem.ops, { ...OPTS, slots: 1 });
    table.admit(range(1, 50), true);
    mem.decode(table, 0, range(1, 60));
    table.release(0);
    const again = table.admit([...range(1, 55), 999], true)!;
    assert.deepEqual(again, { seqId: 0, reused: 0, copiedFrom: null });
    assert.deepEqual(table.tokensOf(0), []);
    assert.deepEqual(mem.calls.slice(-2), ["trim 0 55", "clear 0"]);
  });

  test("a copy that fails leaves the slot cleared", () => {
    const mem = fakeMemory({ copy: false });
    const table = new SlotTable(mem.ops, OPTS);
    const system = range(1, 200);
    table.admit([...system, 7], true);
    mem.decode(table, 0, [...system, 7, ...range(300, 80)]);
    table.release(0);
    assert.deepEqual(table.admit([...system, 8], true), { seqId: 1, reused: 0, copiedFrom: null });
    assert.deepEqual(table.tokensOf(1), []);
  });

  test("invalidate forgets a slot's cells; opting out clears the chosen slot", () => {
    const mem = fakeMemory();
    const table = new SlotTable(mem.ops, { ...OPTS, slots: 1 });
    table.admit(range(1, 10), true);
    mem.decode(table, 0, range(1, 10));
    table.invalidate(0);
    table.release(0);
    assert.deepEqual(table.summary(), [{ id: 0, cachedTokens: 0, busy: false }]);
    mem.decode(table, 0, range(1, 10));
    assert.deepEqual(table.admit(range(1, 10), false), { seqId: 0, reused: 0, copiedFrom: null });
    assert.equal(table.admit(range(1, 10), true), null, "no free slot");
  });
});
