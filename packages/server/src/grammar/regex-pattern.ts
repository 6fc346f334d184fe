/**
 * JSON Schema `pattern` (an ECMAScript regular expression) as GBNF over the characters of a JSON string, so a
 * string's pattern is guaranteed by the grammar. The subset is llama.cpp's and a little more: literals and escapes,
 * `.`, classes (`[a-z]`, `[^...]`, `\d \w \s` and their negations), groups (capturing, `(?:...)`, named),
 * alternation, and the quantifiers `* + ? {n} {n,} {n,m}` (lazy ones too: they match the same strings). A pattern
 * matches anywhere in the string unless anchored with `^`/`$`, as JSON Schema says.
 *
 * What a grammar cannot express is refused (`UnsupportedPatternError`): backreferences, lookaround, word
 * boundaries, Unicode property classes, anchors inside the pattern. Generated text stays valid JSON: `"` and `\`
 * are written escaped, and control characters are never generated (a class or `.` stands for printable ones).
 */
import { classChar, literal, repeat } from "./gbnf-text.js";

export class UnsupportedPatternError extends Error {
  override readonly name = "UnsupportedPatternError";
}

/**
 * Largest `{n,m}` count accepted. llama.cpp expands a repetition into copies of its item and refuses one whose count
 * times the rules it introduces reaches 2000; 500 is the bound schema lengths and item counts have too
 * (MAX_SCHEMA_REPETITIONS in http/openai/json-schema.ts), so a pattern is refused here, naming it, not by the runner.
 */
export const MAX_PATTERN_REPEAT = 500;

type Range = [number, number];
type Node =
  | { kind: "char"; code: number }
  | { kind: "class"; negated: boolean; ranges: Range[] }
  | { kind: "group"; alternatives: Node[][] }
  | { kind: "repeat"; node: Node; min: number; max: number | null };

/** Characters a JSON string can hold without an escape (what `.` and negated classes may produce). */
const SAFE_EXCLUDED = '"\\\\\\x00-\\x1F\\x7F';
/** Any character but a line break or a control character; `"` and `\` escaped. */
const DOT = `([^${SAFE_EXCLUDED}] | ${literal('\\"')} | ${literal("\\\\")})`;
const DIGIT: Range[] = [[0x30, 0x39]];
const WORD: Range[] = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
];
const SPACE: Range[] = [
  [0x09, 0x0d],
  [0x20, 0x20],
];

class Parser {
  private i = 0;
  constructor(private readonly src: string) {}

  /** The top level: alternatives, each with its own anchors. */
  parseTop(): string {
    const alts: string[] = [];
    do {
      const anchoredStart = this.eat("^");
      const seq = this.parseSequence(true);
      const anchoredEnd = this.eat("$");
      if (!this.done() && this.peek() !== "|") this.fail(`unexpected "${this.peek()}"`);
      const body = emitSequence(seq);
      alts.push([anchoredStart ? "" : `${DOT}*`, body, anchoredEnd ? "" : `${DOT}*`].filter(Boolean).join(" ") || '""');
    } while (this.eat("|"));
    if (!this.done()) this.fail(`unbalanced ")"`);
    return alts.length === 1 ? alts[0]! : `(${alts.join(" | ")})`;
  }

  private parseSequence(top: boolean): Node[] {
    const items: Node[] = [];
    while (!this.done()) {
      const c = this.peek();
      if (c === "|" || c === ")") break;
      if (c === "$") {
        if (top && this.isEnd(this.i + 1)) break;
        this.unsupported('"$" inside the pattern');
      }
      if (c === "^") this.unsupported('"^" inside the pattern');
      const atom = this.parseAtom();
      items.push(this.parseQuantifier(atom));
    }
    return items;
  }

  /** True when position p is the end of the pattern or of a top-level alternative. */
  private isEnd(p: number): boolean {
    return p >= this.src.length || this.src[p] === "|";
  }

  private parseAtom(): Node {
    const c = this.next();
    switch (c) {
      case ".":
        return { kind: "class", negated: true, ranges: [] };
      case "(": {
        if (this.eat("?")) {
          if (this.eat(":")) {
            /* non-capturing */
          } else if (this.peek() === "<" && /[A-Za-z_]/.test(this.src[this.i + 1] ?? "")) {
            const close = this.src.indexOf(">", this.i);
            if (close < 0) this.fail("unterminated group name");
            this.i = close + 1;
          } else this.unsupported("lookaround and inline flags");
        }
        const alternatives: Node[][] = [this.parseSequence(false)];
        while (this.eat("|")) alternatives.push(this.parseSequence(false));
        if (!this.eat(")")) this.fail('missing ")"');
        return { kind: "group", alternatives };
      }
      case "[":
        return this.parseClass();
      case "\\":
        return this.parseEscape(false);
      case "*":
      case "+":
      case "?":
      case "{":
        if (c === "{" && !/^\{\d+(,\d*)?\}/.test(this.src.slice(this.i - 1))) return { kind: "char", code: 0x7b };
        return this.fail(`nothing to repeat before "${c}"`);
      case ")":
        return this.fail('unbalanced ")"');
      default:
        return { kind: "char", code: c.codePointAt(0)! };
    }
  }

  private parseQuantifier(node: Node): Node {
    let min: number;
    let max: number | null;
    const c = this.peek();
    if (c === "*") [min, max] = [0, null];
    else if (c === "+") [min, max] = [1, null];
    else if (c === "?") [min, max] = [0, 1];
    else if (c === "{") {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.i));
      if (!m) return node;
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === "" ? null : Number(m[3]);
      if (max !== null && max < min) this.fail(`{${min},${max}}: the maximum is below the minimum`);
      if (min > MAX_PATTERN_REPEAT || (max ?? 0) > MAX_PATTERN_REPEAT)
        this.unsupported(`repetition counts above ${MAX_PATTERN_REPEAT}`);
      this.i += m[0].length - 1;
    } else return node;
    this.i++;
    this.eat("?"); // lazy: the same strings match
    if (this.peek() === "*" || this.peek() === "+") this.fail("nothing to repeat");
    return { kind: "repeat", node, min, max };
  }

  private parseClass(): Node {
    const negated = this.eat("^");
    const ranges: Range[] = [];
    let first = true;
    while (this.peek() !== "]" || first) {
      if (this.done()) this.fail("unterminated character class");
      first = false;
      const from = this.classAtom();
      if (Array.isArray(from)) {
        ranges.push(...from);
        continue;
      }
      if (this.peek() === "-" && this.src[this.i + 1] !== "]" && this.src[this.i + 1] !== undefined) {
        this.i++;
        const to = this.classAtom();
        if (Array.isArray(to)) this.unsupported("a class escape as a range end");
        if (to < from) this.fail("a character range out of order");
        ranges.push([from, to]);
      } else ranges.push([from, from]);
    }
    this.i++;
    return { kind: "class", negated, ranges };
  }

  /** One character of a class, or the ranges of a class escape (`\d`...). */
  private classAtom(): number | Range[] {
    const c = this.next();
    if (c !== "\\") return c.codePointAt(0)!;
    const node = this.parseEscape(true);
    if (node.kind === "char") return node.code;
    if (node.kind === "class" && !node.negated) return node.ranges;
    return this.unsupported("negated class escapes inside a class");
  }

  private parseEscape(inClass: boolean): Node {
    const c = this.next();
    const simple: Record<string, number> = { n: 10, r: 13, t: 9, f: 12, v: 11, "0": 0 };
    if (c === "d" || c === "D") return { kind: "class", negated: c === "D", ranges: DIGIT };
    if (c === "w" || c === "W") return { kind: "class", negated: c === "W", ranges: WORD };
    if (c === "s" || c === "S") return { kind: "class", negated: c === "S", ranges: SPACE };
    if (c in simple && !(c === "0" && /\d/.test(this.peek() ?? ""))) return { kind: "char", code: simple[c]! };
    if (c === "x" || c === "u") {
      const m = (c === "x" ? /^[0-9a-fA-F]{2}/ : /^[0-9a-fA-F]{4}/).exec(this.src.slice(this.i));
      if (!m) this.fail(`bad \\${c} escape`);
      this.i += m[0].length;
      return { kind: "char", code: parseInt(m[0], 16) };
    }
    if (c === "b" && inClass) return { kind: "char", code: 8 };
    if (/[1-9]/.test(c)) this.unsupported("backreferences");
    if (c === "b" || c === "B") this.unsupported("word boundaries");
    if (c === "p" || c === "P") this.unsupported("Unicode property classes");
    if (c === "k") this.unsupported("backreferences");
    if (/[A-Za-z0-9]/.test(c)) this.fail(`unknown escape \\${c}`);
    return { kind: "char", code: c.codePointAt(0)! };
  }

  private peek(): string | undefined {
    return this.src[this.i];
  }
  private next(): string {
    if (this.done()) this.fail("unexpected end");
    const cp = this.src.codePointAt(this.i)!;
    const ch = String.fromCodePoint(cp);
    this.i += ch.length;
    return ch;
  }
  private eat(ch: string): boolean {
    if (this.src[this.i] !== ch) return false;
    this.i++;
    return true;
  }
  private done(): boolean {
    return this.i >= this.src.length;
  }
  private fail(message: string): never {
    throw new InvalidPatternError(`${message} (at ${this.i})`);
  }
  private unsupported(what: string): never {
    throw new UnsupportedPatternError(`${what} cannot be expressed in a grammar`);
  }
}

/** A pattern that is not a valid regular expression. */
export class InvalidPatternError extends Error {
  override readonly name = "InvalidPatternError";
}

/** The characters `code` is written as inside a JSON string. */
function jsonChar(code: number): string {
  const ch = String.fromCodePoint(code);
  if (ch === '"') return '\\"';
  if (ch === "\\") return "\\\\";
  if (code === 10) return "\\n";
  if (code === 13) return "\\r";
  if (code === 9) return "\\t";
  if (code < 0x20 || code === 0x7f) return `\\u${code.toString(16).padStart(4, "0")}`;
  return ch;
}

function emitSequence(items: Node[]): string {
  const out: string[] = [];
  let text = "";
  for (const item of items) {
    if (item.kind === "char") {
      text += jsonChar(item.code);
      continue;
    }
    if (text) out.push(literal(text));
    text = "";
    out.push(emit(item));
  }
  if (text) out.push(literal(text));
  return out.join(" ") || '""';
}

function emit(node: Node): string {
  switch (node.kind) {
    case "char":
      return literal(jsonChar(node.code));
    case "group":
      return `(${node.alternatives.map(emitSequence).join(" | ")})`;
    case "repeat": {
      const inner = emit(node.node);
      return repeat(/^[[("]/.test(inner) && !/\s/.test(inner) ? inner : `(${inner})`, node.min, node.max);
    }
    case "class":
      return emitClass(node);
  }
}

function emitClass(node: { negated: boolean; ranges: Range[] }): string {
  const body = node.ranges.map(([a, b]) => (a === b ? classChar(a) : `${classChar(a)}-${classChar(b)}`)).join("");
  if (node.negated) {
    if (node.ranges.length === 0) return DOT;
    const excluded = (code: number) => node.ranges.some(([a, b]) => a <= code && code <= b);
    const escapes = [0x22, 0x5c].filter((c) => !excluded(c)).map((c) => literal(jsonChar(c)));
    return escapes.length ? `([^${body}${SAFE_EXCLUDED}] | ${escapes.join(" | ")})` : `[^${body}${SAFE_EXCLUDED}]`;
  }
  // Characters that need an escape in JSON are written escaped; the rest stay in the class.
  const plain: Range[] = [];
  const escaped: string[] = [];
  for (const [a, b] of node.ranges) {
    let start = a;
    for (let code = a; code <= b + 1; code++) {
      const special = code <= b && (code < 0x20 || code === 0x22 || code === 0x5c || code === 0x7f);
      if (special || code === b + 1) {
        if (start < code) plain.push([start, code - 1]);
        if (special) escaped.push(literal(jsonChar(code)));
        start = code + 1;
      }
      if (code > 0x7f && !special && code < b) code = b - 1; // no more specials past ASCII
    }
  }
  const alts = [...escaped];
  if (plain.length)
    alts.unshift(`[${plain.map(([a, b]) => (a === b ? classChar(a) : `${classChar(a)}-${classChar(b)}`)).join("")}]`);
  if (alts.length === 0) throw new UnsupportedPatternError("an empty character class cannot be expressed");
  return alts.length === 1 ? alts[0]! : `(${alts.join(" | ")})`;
}

/** GBNF for the characters between a JSON string's quotes that match `pattern`. */
export function patternToGbnf(pattern: string): string {
  return new Parser(pattern).parseTop();
}
