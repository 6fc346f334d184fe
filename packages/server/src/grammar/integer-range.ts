/**
 * GBNF for decimal integers within bounds, so `minimum`/`maximum` on integers are guaranteed by the grammar rather
 * than checked afterwards. Numbers are written the JSON way (no leading zeros, "-" only before a non-zero value).
 *
 * The idea is the one llama.cpp's converter uses for integer ranges: split [lo, hi] into ranges of equal digit
 * counts, and within one digit count branch on the first digit where lo and hi differ (the lower edge, the free
 * middle, the upper edge).
 */
import { MAX_DIGITS, alternatives, digitClass, literal } from "./gbnf-text.js";

/** `n` digits, any. */
function anyDigits(n: number): string {
  return n === 0 ? "" : n === 1 ? "[0-9]" : `[0-9]{${n}}`;
}

function seq(...parts: string[]): string {
  return parts.filter((p) => p !== "" && p !== '""').join(" ") || '""';
}

/** Digit strings of `s.length` digits that are >= s. */
function atLeast(s: string): string {
  if (s.length === 0) return "";
  if (/^0*$/.test(s)) return anyDigits(s.length);
  const d = Number(s[0]);
  const alts = [seq(literal(s[0]!), atLeast(s.slice(1)))];
  if (d < 9) alts.push(seq(digitClass(d + 1, 9), anyDigits(s.length - 1)));
  return alternatives(alts)!;
}

/** Digit strings of `s.length` digits that are <= s. */
function atMost(s: string): string {
  if (s.length === 0) return "";
  if (/^9*$/.test(s)) return anyDigits(s.length);
  const d = Number(s[0]);
  const alts = [seq(literal(s[0]!), atMost(s.slice(1)))];
  if (d > 0) alts.push(seq(digitClass(0, d - 1), anyDigits(s.length - 1)));
  return alternatives(alts)!;
}

/** Digit strings of one length between lo and hi (lo <= hi, same length). */
function sameLength(lo: string, hi: string): string {
  let i = 0;
  while (i < lo.length && lo[i] === hi[i]) i++;
  if (i === lo.length) return literal(lo);
  const prefix = i > 0 ? literal(lo.slice(0, i)) : "";
  const restLength = lo.length - i - 1;
  const loRest = lo.slice(i + 1);
  const hiRest = hi.slice(i + 1);
  let from = Number(lo[i]);
  let to = Number(hi[i]);
  const alts: string[] = [];
  // An edge whose rest is all 0s (lower) or all 9s (upper) takes every continuation: it joins the middle.
  if (!/^0*$/.test(loRest)) {
    alts.push(seq(literal(lo[i]!), atLeast(loRest)));
    from++;
  }
  const upperEdge = /^9*$/.test(hiRest) ? null : seq(literal(hi[i]!), atMost(hiRest));
  if (upperEdge) to--;
  if (from <= to) alts.push(seq(digitClass(from, to), anyDigits(restLength)));
  if (upperEdge) alts.push(upperEdge);
  return seq(prefix, alternatives(alts)!);
}

/**
 * Non-negative integers in [lo, hi] (hi null: no upper bound, up to MAX_DIGITS digits), or null when the range
 * is empty.
 */
export function nonNegativeRange(lo: number, hi: number | null): string | null {
  if (lo < 0) lo = 0;
  if (hi !== null && hi < lo) return null;
  const a = String(lo);
  const alts: string[] = [];
  const lastLength = hi === null ? a.length : String(hi).length;
  for (let k = a.length; k <= lastLength; k++) {
    const from = k === a.length ? a : `1${"0".repeat(k - 1)}`;
    const to = hi !== null && k === lastLength ? String(hi) : "9".repeat(k);
    alts.push(sameLength(from, to));
  }
  if (hi === null && a.length < MAX_DIGITS) alts.push(`[1-9] [0-9]{${a.length},${MAX_DIGITS - 1}}`);
  return alternatives(alts);
}

/** Integers in [min, max] (either null: unbounded on that side), or null when the range is empty. */
export function integerRange(min: number | null, max: number | null): string | null {
  const alts: string[] = [];
  if (max === null || max >= 0) {
    const positive = nonNegativeRange(min === null ? 0 : Math.max(min, 0), max);
    if (positive) alts.push(positive);
  }
  if (min === null || min < 0) {
    // -m for m in [max(1, -max), -min]
    const negative = nonNegativeRange(Math.max(1, max === null ? 1 : -max), min === null ? null : -min);
    if (negative) alts.push(`"-" (${negative})`);
  }
  return alternatives(alts);
}
