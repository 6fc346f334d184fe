/**
 * Hostile values and bodies for the request fuzzer. Values are JSON text, so that bodies can hold what
 * JSON.stringify itself cannot build (JSON nested 10,000 deep).
 */

/** Deterministic PRNG (mulberry32): the same seed gives the same cases. */
export function prng(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const j = (v: unknown) => JSON.stringify(v);
const deepObject = (n: number) => '{"a":'.repeat(n) + "1" + "}".repeat(n);
const deepArray = (n: number) => "[".repeat(n) + "1" + "]".repeat(n);

/** Values a hostile client puts in any field, each as JSON text. */
export const HOSTILE_VALUES: readonly string[] = [
  deepObject(10_000),
  deepArray(10_000),
  deepArray(65),
  j({ type: "object", properties: { a: JSON.parse(deepObject(40)) } }),
  "null",
  "true",
  "0",
  "-1",
  "1.5",
  "1e308",
  "-1e308",
  "2147483648",
  "9007199254740993",
  "18446744073709551617",
  j(""),
  j("x".repeat(200_000)),
  j("\u0000\u0001\u007f\ud800"),
  j("../../../../etc/passwd"),
  j("/proc/self/mem"),
  j("/dev/zero"),
  j("https://user:secret@127.0.0.1:9/model.gguf"),
  j("http://169.254.169.254/latest/meta-data/"),
  j(`sha256:${"0".repeat(64)}`),
  j("{{ .Prompt }}{{ range . }}{{ end }}"),
  j("{% for x in range(1000000000) %}{{ x }}{% endfor %}"),
  j("999999999999h"),
  "[]",
  j([1, 99_999, 2_147_483_647]),
  j(Array.from({ length: 5000 }, (_, i) => i)),
  j(Array.from({ length: 300 }, () => "stop")),
  "{}",
  j({ $ref: "#", type: 42, properties: "no" }),
  j({ type: "string", minLength: 1e9 }),
  j({ type: "array", items: { type: "string" }, minItems: 1e9 }),
  j({ $ref: "#/$defs/a", $defs: { a: { $ref: "#/$defs/b" }, b: { $ref: "#/$defs/a" } } }),
  j({ type: "object", properties: { n: { $ref: "#/$defs/n" } }, $defs: { n: { $ref: "#/$defs/n" } } }),
  '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}',
  j({ role: "user", content: [{ type: "image_url", image_url: "x" }] }),
  j([{ role: "user", content: "x" }]),
  j([{ type: "function", function: { name: "f", parameters: { type: "string", maxLength: 1e9 } } }]),
  j({ num_ctx: 1 << 30, num_predict: 1e9, temperature: -5, stop: ["x"], seed: 1.5 }),
];

/** A value a well-behaved client would put in a field of this JSON-schema type (to get past validation). */
function plausible(name: string, schema: Record<string, any>): unknown {
  if (["model", "name", "source"].includes(name)) return "stories";
  if (name === "messages") return [{ role: "user", content: "Once upon a time" }];
  if (name === "prompt" || name === "content" || name === "input") return "Once upon a time";
  if (name === "tokens") return [1, 2];
  const type = schema.type ?? schema.anyOf?.[0]?.type;
  switch (type) {
    case "string":
      return "x";
    case "integer":
    case "number":
      return 1;
    case "boolean":
      return false;
    case "array":
      return [];
    case "object":
      return {};
    default:
      return "x";
  }
}

/** The fields of a route's body schema (of its first object alternative), with the required ones. */
export function bodyFields(schema: unknown): { fields: string[]; required: string[]; schema: Record<string, any> } {
  let s = schema as Record<string, any> | undefined;
  if (s?.anyOf) s = (s.anyOf as Array<Record<string, any>>).find((x) => x.type === "object");
  const props = (s?.properties ?? {}) as Record<string, any>;
  return { fields: Object.keys(props), required: (s?.required as string[] | undefined) ?? [], schema: props };
}

/**
 * A body for `route` with `field` set to the hostile value `raw` (JSON text). `plausibleBase`: the other required
 * fields get values a real client would send, so the hostile one reaches the code behind validation (only for
 * routes where that changes nothing lasting: inference and reads).
 */
export function bodyWith(
  fields: ReturnType<typeof bodyFields>,
  field: string,
  raw: string,
  plausibleBase: boolean,
): string {
  const base: Record<string, unknown> = {};
  if (plausibleBase) {
    for (const name of fields.required) base[name] = plausible(name, fields.schema[name] ?? {});
    if (fields.fields.includes("max_tokens")) base.max_tokens = 2;
    if (fields.fields.includes("stream")) base.stream = false;
    if (fields.fields.includes("options") && field !== "options") base.options = { num_predict: 2 };
  }
  delete base[field];
  const text = JSON.stringify(base);
  return `${text.slice(0, -1)}${text.length > 2 ? "," : ""}${JSON.stringify(field)}:${raw}}`;
}
