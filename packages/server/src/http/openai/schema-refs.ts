/**
 * Checks of `$ref`s in a normalised JSON schema (see json-schema.ts: `anyOf` already became `oneOf`, `definitions`
 * became `$defs`, refs point to `#/$defs/<name>`) that a grammar needs and the converter does not make:
 * every reference has a definition, no definition refers back to itself before the output has a character (left
 * recursion: llama.cpp refuses the grammar), and every definition the schema uses can end (a definition that
 * always contains itself, e.g. through a property, can only be cut off by max_tokens as broken JSON).
 * Each function returns a message naming the problem, or undefined.
 */

type Schema = Record<string, unknown>;

const PREFIX = "#/$defs/";

/** Every object in a schema, visited without recursion. */
function* nodes(root: unknown): Generator<Schema> {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (Array.isArray(node)) stack.push(...node);
    else if (node && typeof node === "object") {
      yield node as Schema;
      stack.push(...Object.values(node));
    }
  }
}

function defsOf(root: Schema): Record<string, Schema> {
  return root.$defs && typeof root.$defs === "object" ? (root.$defs as Record<string, Schema>) : {};
}

/** A `$ref` that points to no definition (the converter would turn it into "any JSON" with a warning). */
export function missingRef(root: Schema): string | undefined {
  const defined = new Set<string>();
  const refs: string[] = [];
  for (const node of nodes(root)) {
    if (node.$defs && typeof node.$defs === "object") for (const name of Object.keys(node.$defs)) defined.add(name);
    if (typeof node.$ref === "string") refs.push(node.$ref);
  }
  const missing = refs.find((r) => !defined.has(r.slice(PREFIX.length)));
  return missing === undefined ? undefined : `"$ref": "${missing}" points to no definition`;
}

/** Definitions a schema starts with before it writes any character: its own `$ref`, or those of its alternatives. */
function headRefs(schema: Schema): string[] {
  const out: string[] = [];
  const stack: Schema[] = [schema];
  while (stack.length > 0) {
    const s = stack.pop()!;
    if (typeof s.$ref === "string") out.push(s.$ref.slice(PREFIX.length));
    if (Array.isArray(s.oneOf)) stack.push(...(s.oneOf as Schema[]));
  }
  return out;
}

/** A chain of definitions that refer to each other before writing anything (`a -> b -> a`). */
export function leftRecursion(root: Schema): string | undefined {
  const defs = defsOf(root);
  const state = new Map<string, "open" | "done">();
  for (const start of Object.keys(defs)) {
    if (state.has(start)) continue;
    // Depth-first over head references, with an explicit stack: the path holds the open chain.
    const path: Array<{ name: string; next: string[] }> = [];
    const enter = (name: string) => {
      state.set(name, "open");
      path.push({ name, next: defs[name] ? headRefs(defs[name]) : [] });
    };
    enter(start);
    while (path.length > 0) {
      const top = path[path.length - 1]!;
      const next = top.next.pop();
      if (next === undefined) {
        state.set(top.name, "done");
        path.pop();
      } else if (state.get(next) === "open") {
        const cycle = [...path.slice(path.findIndex((p) => p.name === next)).map((p) => p.name), next];
        return `"$ref" cycle ${cycle.map((n) => PREFIX + n).join(" -> ")}: a definition refers back to itself before any output, which no grammar can build`;
      } else if (!state.has(next)) enter(next);
    }
  }
  return undefined;
}

/** True when `schema` can be written out in finitely many characters, given which definitions can. */
function finite(schema: Schema, defs: Map<string, boolean>, depth = 0): boolean {
  if (depth > 256) return true; // normalise() bounds nesting far below this; never loop on a malformed input
  const sub = (s: unknown) => finite(s as Schema, defs, depth + 1);
  if (schema.nullable === true) return true; // null ends it, whatever else the schema holds
  if (typeof schema.$ref === "string") return defs.get(schema.$ref.slice(PREFIX.length)) ?? false;
  if (Array.isArray(schema.oneOf)) return schema.oneOf.some(sub);
  if (schema.enum !== undefined || schema.const !== undefined) return true;
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  if (types.some((t) => t !== "object" && t !== "array")) return true;
  if (types.includes("object")) {
    // Every listed property is generated.
    const props = (schema.properties ?? {}) as Record<string, unknown>;
    return Object.values(props).every(sub);
  }
  const prefix = Array.isArray(schema.prefixItems) ? schema.prefixItems : [];
  if (!prefix.every(sub)) return false;
  const minItems = typeof schema.minItems === "number" ? schema.minItems : 0;
  return minItems <= prefix.length || schema.items === undefined || sub(schema.items);
}

/** A definition in use that always contains itself, so its output could never end. */
export function endlessDefinition(root: Schema): string | undefined {
  const defs = defsOf(root);
  const ends = new Map<string, boolean>(Object.keys(defs).map((n) => [n, false]));
  // Least fixpoint: a definition ends once it can end with what is known to end.
  for (let changed = true; changed;) {
    changed = false;
    for (const [name, known] of ends) {
      if (!known && finite(defs[name]!, ends)) {
        ends.set(name, true);
        changed = true;
      }
    }
  }
  if (finite(root, ends)) return undefined;
  const endless = [...ends].find(([, ok]) => !ok)?.[0];
  return `${endless ? PREFIX + endless : "the schema"} can never end: it always contains itself (every listed property is generated); give the recursion a way out, e.g. an array that may be empty or a oneOf with null`;
}
