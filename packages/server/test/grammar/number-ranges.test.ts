import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decimalOf, numberRange, type Bound } from "../../src/grammar/decimal-range.js";
import { integerRange } from "../../src/grammar/integer-range.js";
import { gbnfToRegExp } from "../support/gbnf-regexp.js";

/** Exact value of a plain decimal string in thousandths (the candidates have at most 3 fraction digits). */
function milli(s: string): bigint {
  const neg = s.startsWith("-");
  const [i, f = ""] = (neg ? s.slice(1) : s).split(".");
  const v = BigInt(i!) * 1000n + BigInt((f + "000").slice(0, 3));
  return neg ? -v : v;
}

function inRange(s: string, min: Bound | null, max: Bound | null): boolean {
  const v = milli(s);
  const m = (b: Bound) => milli(decimalOf(b.value).int + "." + decimalOf(b.value).frac) * (b.value < 0 ? -1n : 1n);
  if (min && (min.exclusive ? v <= m(min) : v < m(min))) return false;
  if (max && (max.exclusive ? v >= m(max) : v > m(max))) return false;
  return true;
}

/** JSON-valid numbers from -13 to 13 with up to 3 fraction digits (including trailing zeros), and a few others. */
const CANDIDATES: string[] = (() => {
  const out = new Set<string>();
  for (let i = -13; i <= 13; i++) {
    const int = String(Math.abs(i));
    for (const sign of i < 0 ? ["-"] : i === 0 ? ["", "-"] : [""]) {
      out.add(sign + int);
      for (let f = 0; f < 1000; f += 41) {
        const digits = String(f).padStart(3, "0");
        out.add(`${sign}${int}.${digits}`);
        out.add(`${sign}${int}.${digits.replace(/0+$/, "") || "0"}`);
      }
      for (const f of ["5", "25", "250", "1", "01", "001", "2", "75", "9", "99", "999"]) out.add(`${sign}${int}.${f}`);
    }
  }
  return [...out].filter((s) => s !== "-0" && !/^-0(\.0*)?$/.test(s));
})();

describe("integer ranges", () => {
  test("match exactly the integers in range, written the JSON way", () => {
    const cases: Array<[number | null, number | null]> = [
      [0, 0],
      [1, 9],
      [0, 100],
      [-15, 123],
      [7, 1234],
      [-1000, -7],
      [100, 999],
      [99, 1001],
      [null, 42],
      [-42, null],
      [5, null],
      [null, -5],
      [0, null],
      [1, null],
    ];
    for (const [min, max] of cases) {
      const re = gbnfToRegExp(`root ::= ${integerRange(min, max)}`);
      for (let n = -2100; n <= 2100; n++) {
        const want = (min === null || n >= min) && (max === null || n <= max);
        assert.equal(re.test(String(n)), want, `[${min}, ${max}] on ${n}`);
      }
      for (const bad of ["007", "-0", "+1", "1.0", ""]) assert.equal(re.test(bad), false, `[${min}, ${max}] on ${bad}`);
    }
    assert.equal(integerRange(5, 4), null);
  });

  test("large bounds", () => {
    const re = gbnfToRegExp(`root ::= ${integerRange(123456789, 9007199254740990)}`);
    for (const n of [123456789, 123456790, 999999999, 1000000000, 9007199254740990])
      assert.ok(re.test(String(n)), String(n));
    for (const n of ["123456788", "9007199254740991", "10000000000000000"]) assert.equal(re.test(n), false, n);
  });
});

describe("number ranges", () => {
  const values = [-12, -10.5, -3.25, -1, -0.5, 0, 0.05, 0.5, 1, 2.25, 3, 7.125, 10, 12];
  test("match exactly the decimals in range, for inclusive and exclusive bounds", () => {
    let checked = 0;
    const bounds: Array<Bound | null> = [null];
    for (const value of values) for (const exclusive of [false, true]) bounds.push({ value, exclusive });
    for (const min of bounds)
      for (const max of bounds) {
        if (min && max && min.value > max.value) continue;
        const expr = numberRange(min, max);
        if (expr === null) {
          assert.ok(min && max && min.value === max.value && (min.exclusive || max.exclusive));
          continue;
        }
        const re = gbnfToRegExp(`root ::= ${expr}`);
        for (const s of CANDIDATES) {
          assert.equal(re.test(s), inRange(s, min, max), `${JSON.stringify(min)} .. ${JSON.stringify(max)} on ${s}`);
          checked++;
        }
        assert.equal(re.test("1e5"), false, "bounded numbers are written without exponent");
      }
    assert.ok(checked > 100_000);
  });

  test("decimal digits of bounds as JavaScript writes them", () => {
    assert.deepEqual(decimalOf(0.1), { int: 0, frac: "1" });
    assert.deepEqual(decimalOf(1e-7), { int: 0, frac: "0000001" });
    assert.deepEqual(decimalOf(-2.5e3), { int: 2500, frac: "" });
    assert.deepEqual(decimalOf(123.456), { int: 123, frac: "456" });
  });
});
