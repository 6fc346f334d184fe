import assert from "node:assert/strict";
import type { GgufFile } from "../src/index.js";

/** Checks the invariants every accepted file must satisfy, independently of the reader's code. */
export function assertInvariants(g: GgufFile): void {
  assert.ok(g.version === 2 || g.version === 3);
  assert.equal(g.dataOffset % g.alignment, 0);
  assert.ok(g.dataOffset >= g.headerBytes);
  const names = new Set<string>();
  const sorted = [...g.tensors].sort((a, b) => a.offset - b.offset);
  let prevEnd = g.dataOffset;
  for (const t of sorted) {
    assert.ok(!names.has(t.name));
    names.add(t.name);
    assert.ok(t.dims.length >= 1 && t.dims.length <= 4);
    assert.ok(t.dims.every((d) => Number.isSafeInteger(d) && d > 0));
    assert.equal(
      t.elements,
      t.dims.reduce((a, b) => a * b, 1),
    );
    assert.equal((t.offset - g.dataOffset) % g.alignment, 0);
    assert.ok(t.offset >= prevEnd, `tensor ${t.name} overlaps`);
    assert.ok(t.offset + t.size <= g.fileSize);
    prevEnd = t.offset + t.size;
  }
}
