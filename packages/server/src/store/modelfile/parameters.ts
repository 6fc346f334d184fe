import { LlmosError } from "../../errors.js";
import type { ParameterValue } from "../definition.js";

type Kind = "int" | "float" | "bool" | "string-list" | "enum";

interface ParameterSpec {
  kind: Kind;
  min?: number;
  max?: number;
  /** The values an `enum` parameter takes. */
  values?: readonly string[];
}

const KV_TYPES = ["f16", "q8_0", "q4_0"] as const;

/**
 * Parameters a definition may set (Ollama's names). `stop` is repeatable and becomes a list; the others keep the
 * last value given.
 */
export const PARAMETER_SPECS: Readonly<Record<string, ParameterSpec>> = {
  num_ctx: { kind: "int", min: 1 },
  num_batch: { kind: "int", min: 1 },
  num_keep: { kind: "int", min: -1 },
  num_predict: { kind: "int", min: -2 },
  num_parallel: { kind: "int", min: 1 },
  num_thread: { kind: "int", min: 0 },
  num_gpu: { kind: "int", min: -1 },
  main_gpu: { kind: "int", min: 0 },
  temperature: { kind: "float", min: 0 },
  top_k: { kind: "int", min: 0 },
  top_p: { kind: "float", min: 0, max: 1 },
  min_p: { kind: "float", min: 0, max: 1 },
  typical_p: { kind: "float", min: 0, max: 1 },
  tfs_z: { kind: "float", min: 0 },
  seed: { kind: "int" },
  repeat_penalty: { kind: "float", min: 0 },
  repeat_last_n: { kind: "int", min: -1 },
  presence_penalty: { kind: "float" },
  frequency_penalty: { kind: "float" },
  mirostat: { kind: "int", min: 0, max: 2 },
  mirostat_tau: { kind: "float", min: 0 },
  mirostat_eta: { kind: "float", min: 0 },
  penalize_newline: { kind: "bool" },
  use_mmap: { kind: "bool" },
  use_mlock: { kind: "bool" },
  numa: { kind: "bool" },
  low_vram: { kind: "bool" },
  stop: { kind: "string-list" },
  // K and V cache element types (both, or each); see LLMOS_KV_CACHE_TYPE.
  kv_cache_type: { kind: "enum", values: KV_TYPES },
  kv_cache_type_k: { kind: "enum", values: KV_TYPES },
  kv_cache_type_v: { kind: "enum", values: KV_TYPES },
};

/** Names accepted in PARAMETER lines, sorted. */
export const PARAMETER_NAMES = Object.keys(PARAMETER_SPECS).sort();

function fail(where: string, message: string): never {
  throw new LlmosError("invalid_request", `${where}${message}`);
}

/**
 * Converts one parameter value (text from a Modelfile, or a JSON value from an API request) to its type.
 * @param where prefix for error messages, e.g. "Modelfile line 3: ".
 * @throws LlmosError `invalid_request` naming the parameter and what it accepts.
 */
export function parseParameterValue(key: string, raw: unknown, where = ""): number | boolean | string {
  const spec = PARAMETER_SPECS[key];
  if (!spec) fail(where, `unknown parameter "${key}"; valid parameters: ${PARAMETER_NAMES.join(", ")}`);
  const range = `${spec.min !== undefined ? ` >= ${spec.min}` : ""}${spec.max !== undefined ? ` <= ${spec.max}` : ""}`;
  switch (spec.kind) {
    case "enum": {
      const text = typeof raw === "string" ? raw.toLowerCase() : raw;
      if (typeof text !== "string" || !spec.values!.includes(text))
        fail(where, `parameter "${key}" must be one of ${spec.values!.join(", ")}, got ${JSON.stringify(raw)}`);
      return text as string;
    }
    case "string-list":
      if (typeof raw !== "string") fail(where, `parameter "${key}" must be a string`);
      return raw;
    case "bool": {
      if (typeof raw === "boolean") return raw;
      const text = String(raw).toLowerCase();
      if (text === "true") return true;
      if (text === "false") return false;
      return fail(where, `parameter "${key}" must be true or false, got ${JSON.stringify(raw)}`);
    }
    case "int":
    case "float": {
      const n = typeof raw === "number" ? raw : typeof raw === "string" && raw.trim() !== "" ? Number(raw) : NaN;
      const ok = Number.isFinite(n) && (spec.kind === "float" || Number.isSafeInteger(n));
      const inRange = ok && (spec.min === undefined || n >= spec.min) && (spec.max === undefined || n <= spec.max);
      if (!inRange) {
        fail(
          where,
          `parameter "${key}" must be ${spec.kind === "int" ? "an integer" : "a number"}${range}, got ${JSON.stringify(raw)}`,
        );
      }
      return n;
    }
  }
}

/**
 * Most values of a repeatable parameter (`stop`): every generation of the model checks each stop string, on top of
 * the request's own.
 */
export const MAX_LIST_PARAMETER_VALUES = 64;

/** Adds one value to a parameter set (appending for `stop`, replacing otherwise). */
export function setParameter(into: Record<string, ParameterValue>, key: string, raw: unknown, where = ""): void {
  const value = parseParameterValue(key, raw, where);
  if (PARAMETER_SPECS[key]!.kind === "string-list") {
    const list = into[key];
    // Appended in place: copying the list for each value made thousands of PARAMETER lines quadratic.
    if (!Array.isArray(list)) into[key] = [value as string];
    else if (list.length >= MAX_LIST_PARAMETER_VALUES)
      fail(where, `parameter "${key}" is given more than ${MAX_LIST_PARAMETER_VALUES} times`);
    else (list as string[]).push(value as string);
  } else {
    into[key] = value;
  }
}

/**
 * Validates a parameter object from an API request (`{"temperature": 0.2, "stop": ["a", "b"]}`).
 * @throws LlmosError `invalid_request`.
 */
export function validateParameters(input: Record<string, unknown>, where = ""): Record<string, ParameterValue> {
  const out: Record<string, ParameterValue> = {};
  for (const [key, value] of Object.entries(input)) {
    if (Array.isArray(value)) {
      if (PARAMETER_SPECS[key]?.kind !== "string-list") {
        parseParameterValue(key, value, where); // throws the right message (unknown name or wrong type)
        fail(where, `parameter "${key}" takes one value`);
      }
      for (const v of value) setParameter(out, key, v, where);
    } else {
      setParameter(out, key, value, where);
    }
  }
  return out;
}
