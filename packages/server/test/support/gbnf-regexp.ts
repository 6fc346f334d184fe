/**
 * A GBNF grammar as a JavaScript RegExp, for brute-force tests of the converter's output: rule references are
 * inlined, so it works for grammars without recursion (number ranges, strings, patterns, flat objects).
 */
export function gbnfToRegExp(grammar: string, root = "root"): RegExp {
  const rules = new Map<string, string>();
  let current = "";
  for (const line of grammar.split("\n")) {
    const m = /^([a-zA-Z0-9-]+)\s*::=\s*(.*)$/.exec(line);
    if (m) {
      current = m[1]!;
      rules.set(current, m[2]!);
    } else if (current && line.trim()) rules.set(current, `${rules.get(current)} ${line.trim()}`);
  }
  const memo = new Map<string, string>();
  const translate = (name: string, depth: number): string => {
    if (depth > 50) throw new Error(`rule ${name} is recursive`);
    const known = memo.get(name);
    if (known !== undefined) return known;
    const body = rules.get(name);
    if (body === undefined) throw new Error(`unknown rule ${name}`);
    const out = `(?:${body2regexp(body, (ref) => translate(ref, depth + 1))})`;
    memo.set(name, out);
    return out;
  };
  return new RegExp(`^${translate(root, 0)}$`, "u");
}

function body2regexp(body: string, ref: (name: string) => string): string {
  let out = "";
  let i = 0;
  while (i < body.length) {
    const c = body[i]!;
    if (c === " " || c === "\t") {
      i++;
    } else if (c === '"') {
      i++;
      let lit = "";
      while (body[i] !== '"') {
        if (body[i] === "\\") {
          const [ch, len] = unescape(body, i);
          lit += ch;
          i += len;
        } else lit += body[i++];
      }
      i++;
      out += `(?:${lit.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")})`;
    } else if (c === "[") {
      let cls = "[";
      i++;
      if (body[i] === "^") cls += body[i++];
      while (body[i] !== "]") {
        if (body[i] === "\\") {
          const [ch, len] = unescape(body, i);
          cls += `\\u{${ch.codePointAt(0)!.toString(16)}}`;
          i += len;
        } else {
          cls += body[i] === "-" ? "-" : body[i]!.replace(/[[\]\\^]/g, "\\$&");
          i++;
        }
      }
      i++;
      out += `${cls}]`;
    } else if ("()|*+?".includes(c)) {
      out += c === "(" ? "(?:" : c;
      i++;
    } else if (c === "{") {
      const end = body.indexOf("}", i);
      out += body.slice(i, end + 1);
      i = end + 1;
    } else {
      const m = /^[a-zA-Z0-9-]+/.exec(body.slice(i))!;
      out += ref(m[0]);
      i += m[0].length;
    }
  }
  return out;
}

function unescape(s: string, i: number): [string, number] {
  const n = s[i + 1]!;
  const simple: Record<string, string> = { n: "\n", r: "\r", t: "\t" };
  if (simple[n]) return [simple[n], 2];
  const hex = n === "x" ? 2 : n === "u" ? 4 : n === "U" ? 8 : 0;
  if (hex) return [String.fromCodePoint(parseInt(s.slice(i + 2, i + 2 + hex), 16)), 2 + hex];
  return [n, 2];
}
