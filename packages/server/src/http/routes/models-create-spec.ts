import { LlmosError } from "../../errors.js";
import type { CreateSpec } from "../../store/index.js";
import { FIELD_LIMITS } from "../field-limits.js";

/**
 * A create spec from an optional parsed Modelfile plus explicit fields (which win). A TEMPLATE or SYSTEM longer
 * than the request limits (they are rendered into every prompt) is a 400.
 */
export function mergeSpec(base: CreateSpec | undefined, fields: Partial<CreateSpec>): CreateSpec {
  const spec: CreateSpec = { ...(base ?? { from: "" }) };
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    if (key === "parameters") spec.parameters = { ...spec.parameters, ...(value as Record<string, unknown>) };
    else if (key === "adapters") spec.adapters = [...(spec.adapters ?? []), ...(value as string[])];
    else (spec as unknown as Record<string, unknown>)[key] = value;
  }
  for (const field of ["template", "system"] as const) {
    const value = spec[field];
    if (value !== undefined && value.length > FIELD_LIMITS[field])
      throw new LlmosError(
        "invalid_request",
        `${field} is ${value.length} characters; the limit is ${FIELD_LIMITS[field]}`,
        {
          param: field,
        },
      );
  }
  return spec;
}
