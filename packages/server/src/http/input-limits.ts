import type { FastifyRequest } from "fastify";
import type { LlmosConfig } from "../config/config.js";
import { LlmosError } from "../errors.js";
import { jsonDepth } from "../lib/json-depth.js";

type Limits = LlmosConfig["limits"];

/**
 * preValidation hook: a JSON body nested deeper than `limits.jsonDepth` is refused before anything walks it. Every
 * later walker of user JSON (schema checks, error messages, templates, serialisers) may then recurse safely.
 */
export function bodyDepthGuard(limits: Limits) {
  return async (request: FastifyRequest): Promise<void> => {
    const body = request.body;
    if (body === null || typeof body !== "object" || Buffer.isBuffer(body)) return;
    if (jsonDepth(body, limits.jsonDepth) > limits.jsonDepth)
      throw new LlmosError("invalid_request", `the request body is nested more than ${limits.jsonDepth} levels deep`);
  };
}

/** A JSON Schema from a request (response_format, format, tool parameters) within the configured size and depth. */
export function checkSchemaLimits(schema: unknown, param: string, limits: Limits): void {
  if (schema === undefined || schema === null || typeof schema !== "object") return;
  // Depth first: serialising a deeply nested value to measure it would overflow the stack.
  if (jsonDepth(schema, limits.schemaDepth) > limits.schemaDepth)
    throw new LlmosError("invalid_request", `${param} is nested more than ${limits.schemaDepth} levels deep`, {
      param,
    });
  const bytes = Buffer.byteLength(JSON.stringify(schema));
  if (bytes > limits.schemaBytes)
    throw new LlmosError("payload_too_large", `${param} is ${bytes} bytes; the limit is ${limits.schemaBytes}`, {
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
