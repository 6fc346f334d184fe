/**
 * Per-key model allow-lists: shell-style globs (`*` = any run of characters, `?` = one character)
 * matched against the whole model name. A name matches with and without its `:latest` tag, so
 * `llama3` and `llama3:latest` are the same model to an allow-list.
 */

const cache = new Map<string, RegExp>();

/** Compiles a glob to an anchored RegExp; every other character is literal. */
export function globToRegExp(glob: string): RegExp {
  let re = cache.get(glob);
  if (re) return re;
  let src = "";
  for (const ch of glob) {
    if (ch === "*") src += ".*";
    else if (ch === "?") src += ".";
    else src += ch.replace(/[.+^${}()|[\]\\/-]/g, "\\$&");
  }
  re = new RegExp(`^${src}$`, "s");
  if (cache.size > 1000) cache.clear();
  cache.set(glob, re);
  return re;
}

/** The spellings of a model name an allow-list is matched against (`x` and `x:latest` are the same model). */
export function modelNameVariants(name: string): string[] {
  const n = name.trim();
  if (n.endsWith(":latest")) return [n, n.slice(0, -":latest".length)];
  // A name with a tag other than latest (or a digest/path) is only itself; a bare name is also name:latest.
  const lastSegment = n.slice(n.lastIndexOf("/") + 1);
  return lastSegment.includes(":") ? [n] : [n, `${n}:latest`];
}

/**
 * True when `model` is allowed by `patterns`. `undefined`/`null` means no allow-list (everything allowed);
 * an empty list allows nothing.
 */
export function modelAllowed(patterns: readonly string[] | null | undefined, model: string): boolean {
  if (patterns == null) return true;
  const variants = modelNameVariants(model);
  return patterns.some((p) => {
    const re = globToRegExp(p);
    return variants.some((v) => re.test(v));
  });
}
