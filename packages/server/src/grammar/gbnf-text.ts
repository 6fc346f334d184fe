/**
 * Pieces of GBNF text (llama.cpp's grammar format): quoted literals, character classes, alternatives and bounded
 * repetition. Everything the JSON-schema converter writes goes through these, so escaping lives in one place.
 */

/** The shape of a digit run with no bound of its own: JSON numbers never need more than 16 significant digits. */
export const MAX_DIGITS = 16;

const LITERAL_ESCAPES: Record<string, string> = { '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** `text` as a GBNF string literal (control characters as \xHH). */
export function literal(text: string): string {
  let out = "";
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (LITERAL_ESCAPES[ch]) out += LITERAL_ESCAPES[ch];
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return `"${out}"`;
}

/** One character for use inside `[...]`. */
export function classChar(code: number): string {
  const ch = String.fromCodePoint(code);
  if (ch === "]" || ch === "\\" || ch === "-" || ch === "^" || ch === "[") return `\\${ch}`;
  if (code < 0x20 || code === 0x7f) return `\\x${code.toString(16).padStart(2, "0")}`;
  return ch;
}

/** `[from-to]` over digits. */
export function digitClass(from: number, to: number): string {
  return from === to ? `[${from}]` : `[${from}-${to}]`;
}

/** Alternatives as one group; `null` when there are none. A lone alternative is returned as is. */
export function alternatives(alts: string[]): string | null {
  const unique = [...new Set(alts)];
  if (unique.length === 0) return null;
  if (unique.length === 1) return unique[0]!;
  return `(${unique.map((a) => (a === "" ? '""' : a)).join(" | ")})`;
}

/** `item` repeated between `min` and `max` times (`max` null: no upper bound), separated by `separator`. */
export function repeat(item: string, min: number, max: number | null, separator = ""): string {
  if (max === 0) return '""';
  if (!separator) {
    if (min === 0 && max === 1) return `${item}?`;
    if (max === null) return min === 0 ? `${item}*` : min === 1 ? `${item}+` : `${item}{${min},}`;
    return min === max ? (min === 1 ? item : `${item}{${min}}`) : `${item}{${min},${max}}`;
  }
  const rest = repeat(`(${separator} ${item})`, Math.max(0, min - 1), max === null ? null : max - 1);
  const list = rest === '""' ? item : `${item} ${rest}`;
  return min === 0 ? `(${list})?` : list;
}
