import type { LlmosConfig } from "../config/config.js";
import { LlmosError } from "../errors.js";

type Limits = LlmosConfig["limits"];

function depthOf(value: unknown, depth = 0, max = Infinity): number {
  if (depth > max) return depth;
  if (Array.isArray(value)) return value.reduce<number>((d, v) => Math.max(d, depthOf(v, depth + 1, max)), depth);
  if (value && typeof value === "object")
    return Object.values(value).reduce<number>((d, v) => Math.max(d, depthOf(v, depth + 1, max)), depth);
  return depth;
}

/** A JSON Schema from a request (response_format, format, tool parameters) within the configured size and depth. */
export function checkSchemaLimits(schema: unknown, param: string, limits: Limits): void {
  if (schema === undefined || schema === null || typeof schema !== "object") return;
  const bytes = Buffer.byteLength(JSON.stringify(schema));
  if (bytes > limits.schemaBytes)
    throw new LlmosError("payload_too_large", `${param} is ${bytes} bytes; the limit is ${limits.schemaBytes}`, {
      param,
    });
  const depth = depthOf(schema, 0, limits.schemaDepth + 1);
  if (depth > limits.schemaDepth)
    throw new LlmosError("invalid_request", `${param} is nested more than ${limits.schemaDepth} levels deep`, {
      param,
    });
}

/** Tool lists within the configured count, and each tool's parameters schema within the schema limits. */
export function checkToolLimits(
  tools: ReadonlyArray<{ function?: { parameters?: unknown } }> | undefined,
  limits: Limits,
): void {
  if (!tools) return;
  if (tools.length > limits.tools)
    throw new LlmosError("invalid_request", `at most ${limits.tools} tools are allowed, got ${tools.length}`, {
      param: "tools",
    });
  tools.forEach((t, i) => checkSchemaLimits(t.function?.parameters, `tools[${i}].function.parameters`, limits));
}
