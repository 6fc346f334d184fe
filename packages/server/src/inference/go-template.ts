import { LlmosError } from "../errors.js";

/** Limits of one Go-template render. */
export interface GoTemplateLimits {
  /** Most nodes visited, all turns together. Default 1,000,000. */
  maxSteps: number;
  /** Longest output in characters. Default 16 Mi. */
  maxOutputChars: number;
}

export const DEFAULT_GO_TEMPLATE_LIMITS: Readonly<GoTemplateLimits> = Object.freeze({
  maxSteps: 1_000_000,
  maxOutputChars: 16 * 1024 * 1024,
});

/** Deepest `{{ if }}` nesting (real templates use 2 or 3). */
const MAX_NESTING = 64;

/** A parsed template node. */
export type GoTemplateNode = Node;

type Node =
  | { kind: "text"; text: string }
  | { kind: "var"; name: string }
  | { kind: "if"; name: string; then: Node[]; else: Node[] };

/**
 * Parses the subset of Go's text/template that classic Ollama templates use: `{{ .Var }}`,
 * `{{ if .Var }}...{{ else }}...{{ end }}` (nested), `{{/* comments *\/}}` and the trim markers `{{-` / `-}}`.
 * One pass with `indexOf`: time linear in the template, whatever it holds (the regex this replaces was quadratic
 * on unclosed `{{ if`). Anything else (`range`, functions, pipelines) is refused, naming the action.
 * @throws LlmosError `invalid_request` with `param`.
 */
export function parseGoTemplate(template: string, param = "template"): Node[] {
  const root: Node[] = [];
  const stack: Array<{ node: Extract<Node, { kind: "if" }>; inElse: boolean }> = [];
  const out = () => {
    const top = stack[stack.length - 1];
    return top ? (top.inElse ? top.node.else : top.node.then) : root;
  };
  const fail = (why: string) => new LlmosError("invalid_request", `${param}: ${why}`, { param });
  let pos = 0;
  let trimNext = false;
  while (pos <= template.length) {
    const open = template.indexOf("{{", pos);
    let text = template.slice(pos, open === -1 ? template.length : open);
    if (trimNext) text = text.replace(/^\s+/, "");
    trimNext = false;
    if (open === -1) {
      if (text) out().push({ kind: "text", text });
      break;
    }
    const close = template.indexOf("}}", open + 2);
    if (close === -1) throw fail(`unclosed {{ at character ${open}`);
    let action = template.slice(open + 2, close);
    if (action.startsWith("-") && /^-\s/.test(action)) {
      text = text.replace(/\s+$/, "");
      action = action.slice(1);
    }
    if (/\s-$/.test(action)) {
      trimNext = true;
      action = action.slice(0, -1);
    }
    if (text) out().push({ kind: "text", text });
    pos = close + 2;
    const a = action.trim();
    if (a.startsWith("/*") && a.endsWith("*/")) continue;
    let m: RegExpExecArray | null;
    if ((m = /^\.([A-Za-z_]\w*)$/.exec(a))) out().push({ kind: "var", name: m[1]! });
    else if ((m = /^if\s+\.([A-Za-z_]\w*)$/.exec(a))) {
      if (stack.length >= MAX_NESTING) throw fail(`{{ if }}s nest more than ${MAX_NESTING} deep`);
      const node: Extract<Node, { kind: "if" }> = { kind: "if", name: m[1]!, then: [], else: [] };
      out().push(node);
      stack.push({ node, inElse: false });
    } else if (a === "else") {
      const top = stack[stack.length - 1];
      if (!top || top.inElse) throw fail(`{{ else }} at character ${open} has no open {{ if }}`);
      top.inElse = true;
    } else if (a === "end") {
      if (!stack.pop()) throw fail(`{{ end }} at character ${open} has no open {{ if }}`);
    } else {
      throw fail(
        `{{ ${a.slice(0, 40)} }} is not supported; llmos templates know .System, .Prompt, .Response and if/else/end`,
      );
    }
  }
  if (stack.length > 0) throw fail("an {{ if }} is never closed with {{ end }}");
  return root;
}

/**
 * Renders parsed nodes: `{{ .X }}` writes `vars.X` (empty when unknown), `{{ if .X }}` tests `isSet("X")`.
 * Counts steps and output characters in `budget` against `limits` (share one budget across the turns of a chat).
 */
export function renderNodes(
  nodes: readonly Node[],
  vars: Readonly<Record<string, string>>,
  isSet: (name: string) => boolean,
  budget: { steps: number; chars: number },
  limits: GoTemplateLimits,
  param: string,
): string {
  let out = "";
  const walk = (list: readonly Node[]): void => {
    for (const node of list) {
      if (++budget.steps > limits.maxSteps)
        throw new LlmosError("invalid_request", `${param}: rendering takes more than ${limits.maxSteps} steps`, {
          param,
        });
      if (node.kind === "if") {
        walk(isSet(node.name) ? node.then : node.else);
        continue;
      }
      const piece = node.kind === "text" ? node.text : (vars[node.name] ?? "");
      budget.chars += piece.length;
      if (budget.chars > limits.maxOutputChars)
        throw new LlmosError(
          "invalid_request",
          `${param}: the rendered prompt is longer than ${limits.maxOutputChars} characters`,
          { param },
        );
      out += piece;
    }
  };
  walk(nodes);
  return out;
}
