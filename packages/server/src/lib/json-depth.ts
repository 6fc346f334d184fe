/**
 * Nesting depth of a JSON value (a scalar is 0, an object or array holding only scalars is 1), measured without
 * recursion so that a hostile value nested 100,000 deep cannot overflow the stack. Stops as soon as the depth
 * exceeds `max` and returns that depth.
 */
export function jsonDepth(value: unknown, max = Infinity): number {
  let deepest = 0;
  const stack: Array<{ node: object; depth: number }> = [];
  if (value !== null && typeof value === "object") stack.push({ node: value, depth: 1 });
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    if (depth > deepest) {
      deepest = depth;
      if (deepest > max) return deepest;
    }
    const children = Array.isArray(node) ? node : Object.values(node);
    for (const child of children) {
      if (child !== null && typeof child === "object") stack.push({ node: child, depth: depth + 1 });
    }
  }
  return deepest;
}

/** Deepest JSON that llmos walks with recursive code (templates, serialisers) after parsing it from a string. */
export const MAX_PARSED_JSON_DEPTH = 64;
