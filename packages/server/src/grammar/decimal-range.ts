/**
 * GBNF for JSON numbers within bounds (`minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` on
 * `"type": "number"`), exact for any bound written in decimal: a number is an integer part and an optional
 * fraction; integer parts strictly inside the bounds take any fraction, and at a bound's own integer part the
 * fraction's digits are compared with the bound's digit by digit. Bounded numbers are written without an exponent.
 */
import { MAX_DIGITS, alternatives, digitClass, literal } from "./gbnf-text.js";
import { nonNegativeRange } from "./integer-range.js";

/** A non-negative decimal: integer part and fraction digits (no trailing zeros). */
interface Decimal {
  int: number;
  frac: string;
}

/** One side of a range: the value, and whether it is excluded. */
export interface Bound {
  value: number;
  exclusive: boolean;
}

const ANY_TAIL = `[0-9]{0,${MAX_DIGITS - 1}}`;
const FREE_FRACTION = `("." [0-9]{1,${MAX_DIGITS - 1}})?`;

/** The exact decimal digits of |x| as JavaScript writes x (shortest round trip, so 0.1 is "0.1"). */
export function decimalOf(x: number): Decimal {
  const [mantissa, exp] = Math.abs(x).toString().split("e") as [string, string | undefined];
  const [intPart, fracPart = ""] = mantissa.split(".") as [string, string | undefined];
  let digits = intPart + fracPart;
  let point = intPart.length + (exp ? Number(exp) : 0);
  if (point < 0) {
    digits = "0".repeat(-point) + digits;
    point = 0;
  }
  if (point > digits.length) digits += "0".repeat(point - digits.length);
  return { int: Number(digits.slice(0, point) || "0"), frac: digits.slice(point).replace(/0+$/, "") };
}

function seq(...parts: string[]): string {
  return parts.filter((p) => p !== "" && p !== '""').join(" ") || '""';
}

/**
 * Fraction digits (after the point) whose value lies between 0.a and 0.b, from digit `i` on, while the digits so
 * far equal a's (tight lower) or b's (tight upper). `first`: at least one digit must follow. Null: none can.
 */
function fractionDigits(
  a: { digits: string; exclusive: boolean } | null,
  b: { digits: string; exclusive: boolean } | null,
  i: number,
  tightLow: boolean,
  tightHigh: boolean,
  first: boolean,
): string | null {
  const low = tightLow ? a : null;
  const high = tightHigh ? b : null;
  const anyRun = first ? `[0-9]{1,${MAX_DIGITS - 1}}` : ANY_TAIL;
  const zeros = first ? `"0"+` : `"0"*`;
  const lowDone = !low || i >= low.digits.length;
  const highDone = !high || i >= high.digits.length;
  if (lowDone && highDone) {
    // Past both bounds' digits: the bounds continue with zeros.
    if (low && high) return low.exclusive || high.exclusive ? null : zeros;
    if (low) return low.exclusive ? `"0"* [1-9] ${ANY_TAIL}` : anyRun;
    if (high) return high.exclusive ? null : zeros;
    return anyRun;
  }
  const alts: string[] = [];
  if (!first && endsHere(low, high, i)) alts.push('""');
  const dLow = low ? Number(low.digits[i] ?? "0") : 0;
  const dHigh = high ? Number(high.digits[i] ?? "0") : 9;
  if (dLow > dHigh) return alternatives(alts);
  if (dLow === dHigh) {
    const rest = fractionDigits(a, b, i + 1, !!low, !!high, false);
    if (rest !== null) alts.push(seq(literal(String(dLow)), rest));
    return alternatives(alts);
  }
  let from = dLow;
  let to = dHigh;
  if (low) {
    const rest = fractionDigits(a, b, i + 1, true, false, false);
    if (rest !== null) alts.push(seq(literal(String(dLow)), rest));
    from++;
  }
  const upper = high ? fractionDigits(a, b, i + 1, false, true, false) : null;
  if (high) to--;
  if (from <= to) alts.push(seq(digitClass(from, to), ANY_TAIL));
  if (upper !== null) alts.push(seq(literal(String(dHigh)), upper));
  return alternatives(alts);
}

/** Whether the fraction may end at digit `i` (the rest being zeros) without crossing a tight bound. */
function endsHere(
  low: { digits: string; exclusive: boolean } | null,
  high: { digits: string; exclusive: boolean } | null,
  i: number,
): boolean {
  const lowOk = !low || (/^0*$/.test(low.digits.slice(i)) && !low.exclusive);
  const highOk = !high || !high.exclusive || !/^0*$/.test(high.digits.slice(i));
  return lowOk && highOk;
}

/** The optional fraction of a number whose integer part sits at the bounds given (null: no bound there). */
function fraction(
  a: { digits: string; exclusive: boolean } | null,
  b: { digits: string; exclusive: boolean } | null,
): string | null {
  const alts: string[] = [];
  if (endsHere(a, b, 0)) alts.push('""');
  const digits = fractionDigits(a, b, 0, !!a, !!b, true);
  if (digits !== null) alts.push(`"." ${digits.includes(" ") && !digits.startsWith("(") ? `(${digits})` : digits}`);
  return alternatives(alts);
}

/** Magnitudes (non-negative numbers, no sign) between `lo` and `hi` (null: unbounded). */
function magnitudeRange(lo: Bound, hi: Bound | null): string | null {
  const L = decimalOf(lo.value);
  const H = hi ? decimalOf(hi.value) : null;
  const low = { digits: L.frac, exclusive: lo.exclusive };
  const high = H ? { digits: H.frac, exclusive: hi!.exclusive } : null;
  const alts: string[] = [];
  const at = (n: number, f: string | null) =>
    f === null ? null : f === '""' ? literal(String(n)) : seq(literal(String(n)), f);
  if (H && L.int === H.int) {
    const one = at(L.int, fraction(low, high));
    if (one) alts.push(one);
    return alternatives(alts);
  }
  const lowEdge = at(L.int, fraction(low, null));
  if (lowEdge) alts.push(lowEdge);
  const middle = nonNegativeRange(L.int + 1, H ? H.int - 1 : null);
  if (middle) alts.push(seq(middle.includes("|") && !middle.startsWith("(") ? `(${middle})` : middle, FREE_FRACTION));
  if (H) {
    const highEdge = at(H.int, fraction(null, high));
    if (highEdge) alts.push(highEdge);
  }
  return alternatives(alts);
}

/** Numbers between `min` and `max` (null: unbounded on that side), or null when none are. */
export function numberRange(min: Bound | null, max: Bound | null): string | null {
  const alts: string[] = [];
  if (!max || max.value > 0 || (max.value === 0 && !max.exclusive)) {
    const lo = !min || min.value < 0 ? { value: 0, exclusive: false } : min;
    const positive = magnitudeRange(lo, max);
    if (positive) alts.push(positive);
  }
  if (!min || min.value < 0) {
    // -m: m > 0 (zero is written without a sign), m >= -max (or >), m <= -min (or <).
    const lo = max && max.value < 0 ? { value: -max.value, exclusive: max.exclusive } : { value: 0, exclusive: true };
    const hi = min ? { value: -min.value, exclusive: min.exclusive } : null;
    const negative = magnitudeRange(lo, hi);
    if (negative) alts.push(`"-" (${negative})`);
  }
  return alternatives(alts);
}
