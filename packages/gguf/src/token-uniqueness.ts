import type { GgufValue } from "./types.js";
import { GgufArrayRef } from "./values.js";

/** A token text that appears twice, with the ids of its first two occurrences. */
export interface DuplicateToken {
  text: string;
  first: number;
  second: number;
}

/** llama.cpp renames empty tokens to `[EMPTY_<id>]` before it asserts that token texts are unique. */
function emptyName(id: number): string {
  return `[EMPTY_${id}]`;
}

/**
 * The first repeated token text of a vocabulary (llama.cpp aborts the process on one), or undefined.
 * A built array is checked with a Map. An unparsed one (a large vocabulary kept as its header bytes) is checked
 * without building a string per token: a 29-bit hash of each token's bytes and its id packed into one double,
 * sorted natively, then only equal hashes compared byte by byte; memory is 12 bytes a token.
 */
export function findDuplicateToken(tokens: readonly GgufValue[] | GgufArrayRef): DuplicateToken | undefined {
  if (!(tokens instanceof GgufArrayRef)) {
    const seen = new Map<string, number>();
    let found: DuplicateToken | undefined;
    tokens.forEach((t, i) => {
      if (found) return;
      const word = t === "" ? emptyName(i) : (t as string);
      const prev = seen.get(word);
      if (prev !== undefined) found = { text: word, first: prev, second: i };
      else seen.set(word, i);
    });
    return found;
  }

  const n = tokens.length;
  const ID_SPACE = 2 ** 24; // ids up to maxArrayLength's default (16M) fit beside a 29-bit hash in a double
  if (n > ID_SPACE) return findDuplicateToken(tokens.toArray());
  const packed = new Float64Array(n);
  const offsets = new Uint32Array(n);
  tokens.forEachStringSpan((i, bytes, start, end) => {
    offsets[i] = start - 8;
    const h = start === end ? fnv1a(Buffer.from(emptyName(i)), 0, emptyName(i).length) : fnv1a(bytes, start, end);
    packed[i] = (h >>> 3) * ID_SPACE + i;
  });
  const textOf = (i: number): Buffer => {
    const bytes = tokens.stringBytesAt(offsets[i]!);
    return bytes.length === 0 ? Buffer.from(emptyName(i)) : bytes;
  };
  packed.sort();
  let best: DuplicateToken | undefined;
  for (let a = 0; a < n;) {
    const hash = Math.floor(packed[a]! / ID_SPACE);
    let b = a + 1;
    while (b < n && Math.floor(packed[b]! / ID_SPACE) === hash) b++;
    // A run of equal hashes (almost always of one): compare its members' bytes pairwise.
    for (let x = a; x < b; x++) {
      for (let y = x + 1; y < b; y++) {
        const i = packed[x]! % ID_SPACE;
        const j = packed[y]! % ID_SPACE;
        if ((best === undefined || j < best.second) && textOf(i).equals(textOf(j)))
          best = { text: textOf(i).toString("utf8"), first: i, second: j };
      }
    }
    a = b;
  }
  return best;
}

/** 32-bit FNV-1a of `bytes[start, end)`. */
function fnv1a(bytes: Buffer, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
