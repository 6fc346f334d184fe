import type { CreateSpec } from "../../store/index.js";

/** A create spec from an optional parsed Modelfile plus explicit fields (which win). */
export function mergeSpec(base: CreateSpec | undefined, fields: Partial<CreateSpec>): CreateSpec {
  const spec: CreateSpec = { ...(base ?? { from: "" }) };
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    if (key === "parameters") spec.parameters = { ...spec.parameters, ...(value as Record<string, unknown>) };
    else if (key === "adapters") spec.adapters = [...(spec.adapters ?? []), ...(value as string[])];
    else (spec as unknown as Record<string, unknown>)[key] = value;
  }
  return spec;
}
