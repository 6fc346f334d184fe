import { LlmosError } from "../../errors.js";
import type { SamplingInput } from "../../inference/sampling.js";

/** What Ollama `options` turn into: sampling settings, and a per-request context size (reloads the model). */
export interface MappedOptions {
  sampling: SamplingInput;
  /** `num_ctx`: context tokens per sequence the model should be loaded with. */
  numCtx?: number;
}

type Kind = "number" | "integer" | "boolean" | "stop";

/** Options llmos honours, with the SamplingInput field they map onto. */
const HONOURED: Record<string, { kind: Kind; min?: number; max?: number }> = {
  temperature: { kind: "number", min: 0, max: 100 },
  top_k: { kind: "integer", min: 0 },
  top_p: { kind: "number", min: 0, max: 1 },
  min_p: { kind: "number", min: 0, max: 1 },
  num_predict: { kind: "integer", min: -2 },
  seed: { kind: "integer" },
  repeat_penalty: { kind: "number", min: 0, max: 100 },
  repeat_last_n: { kind: "integer", min: -1 },
  presence_penalty: { kind: "number", min: -100, max: 100 },
  frequency_penalty: { kind: "number", min: -100, max: 100 },
  stop: { kind: "stop" },
  // A context smaller than 256 tokens is useless and a different size reloads the model: bounded below here,
  // capped at the model's training context where it is applied.
  num_ctx: { kind: "integer", min: 256, max: 1 << 20 },
};

/**
 * Options llmos cannot honour: accepted only at the value that means "what llmos does anyway" (Ollama's default,
 * or the value that matches llmos' behaviour); anything else is a 400 rather than a silently ignored setting.
 */
const FIXED: Record<string, { kind: Kind; accepts: (v: unknown, ctx: OptionContext) => boolean; why: string }> = {
  mirostat: { kind: "integer", accepts: (v) => v === 0, why: "mirostat sampling is not implemented (use 0)" },
  mirostat_tau: { kind: "number", accepts: (v) => v === 5, why: "mirostat is not implemented (leave at 5.0)" },
  mirostat_eta: { kind: "number", accepts: (v) => v === 0.1, why: "mirostat is not implemented (leave at 0.1)" },
  tfs_z: { kind: "number", accepts: (v) => v === 1, why: "tail-free sampling is not implemented (use 1.0)" },
  typical_p: { kind: "number", accepts: (v) => v === 1, why: "locally typical sampling is not implemented (use 1.0)" },
  num_gpu: {
    kind: "integer",
    accepts: (v, c) => v === -1 || (v === 0 && !c.gpu),
    why: "GPU offload is decided by the server (use -1, or 0 when the server runs without a GPU)",
  },
  main_gpu: { kind: "integer", accepts: (v) => v === 0, why: "the GPU is chosen by the server (use 0)" },
  num_thread: { kind: "integer", accepts: (v, c) => v === 0 || v === c.threads, why: "threads are set by the server" },
  num_batch: { kind: "integer", accepts: (v) => v === 512, why: "the batch size is fixed at 512" },
  numa: { kind: "boolean", accepts: (v) => v === false, why: "NUMA placement is not supported" },
  use_mmap: { kind: "boolean", accepts: (v) => v === true, why: "models are always memory-mapped" },
  use_mlock: { kind: "boolean", accepts: (v) => v === false, why: "locking model memory is not supported" },
  low_vram: { kind: "boolean", accepts: (v) => v === false, why: "low-VRAM mode is not supported" },
  f16_kv: { kind: "boolean", accepts: (v) => v === true, why: "the KV cache type is fixed" },
  logits_all: { kind: "boolean", accepts: (v) => v === false, why: "use logprobs on the OpenAI API instead" },
  vocab_only: { kind: "boolean", accepts: (v) => v === false, why: "vocab-only loading is not supported" },
  // No-ops that change nothing llmos does: llmos never shifts the context (an over-long prompt is an error), and
  // newline penalisation was removed from Ollama and llama.cpp.
  num_keep: { kind: "integer", accepts: () => true, why: "" },
  penalize_newline: { kind: "boolean", accepts: () => true, why: "" },
};

export interface OptionContext {
  threads: number;
  gpu: boolean;
  stopLimit: number;
}

/** Checks and maps Ollama `options`; every key is known, typed and in range, or the request is refused. */
export function mapOllamaOptions(
  options: Record<string, unknown> | null | undefined,
  ctx: OptionContext,
): MappedOptions {
  const sampling: SamplingInput = {};
  const out: MappedOptions = { sampling };
  if (!options) return out;
  for (const [key, value] of Object.entries(options)) {
    if (value === null || value === undefined) continue;
    const param = `options.${key}`;
    const honoured = HONOURED[key];
    const fixed = FIXED[key];
    if (!honoured && !fixed)
      throw new LlmosError(
        "invalid_request",
        `unknown option "${key}" (see docs/api-ollama.md for the supported options)`,
        { param },
      );
    checkType(value, (honoured ?? fixed)!.kind, param, ctx.stopLimit);
    if (fixed) {
      if (!fixed.accepts(value, ctx))
        throw new LlmosError(
          "invalid_request",
          `option ${key}=${JSON.stringify(value)} is not supported: ${fixed.why}`,
          { param },
        );
      continue;
    }
    const { min, max } = honoured!;
    if (typeof value === "number" && ((min !== undefined && value < min) || (max !== undefined && value > max))) {
      throw new LlmosError(
        "invalid_request",
        `option ${key} must be ${min !== undefined && max !== undefined ? `between ${min} and ${max}` : min !== undefined ? `at least ${min}` : `at most ${max}`}, got ${value}`,
        { param },
      );
    }
    switch (key) {
      case "num_ctx":
        out.numCtx = value as number;
        break;
      case "repeat_last_n":
        // Ollama: -1 means "the whole context"; llmos' penalty window is bounded, so use a large one.
        sampling.repeat_last_n = value === -1 ? 1_000_000 : (value as number);
        break;
      case "num_predict":
        sampling.num_predict = value as number;
        break;
      case "stop":
        sampling.stop = (value as string[]).filter((s) => s.length > 0);
        break;
      default:
        (sampling as Record<string, unknown>)[key] = value;
    }
  }
  return out;
}

function checkType(value: unknown, kind: Kind, param: string, stopLimit: number): void {
  const bad = (what: string) =>
    new LlmosError("invalid_request", `${param} must be ${what}, got ${JSON.stringify(value)}`, { param });
  switch (kind) {
    case "number":
      if (typeof value !== "number" || !Number.isFinite(value)) throw bad("a number");
      return;
    case "integer":
      if (!Number.isInteger(value)) throw bad("an integer");
      return;
    case "boolean":
      if (typeof value !== "boolean") throw bad("true or false");
      return;
    case "stop":
      if (!Array.isArray(value) || !value.every((s) => typeof s === "string" && s.length <= 1000))
        throw bad("an array of strings");
      if (value.length > stopLimit)
        throw new LlmosError(
          "invalid_request",
          `at most ${stopLimit} stop sequences are allowed, got ${value.length}`,
          { param },
        );
      return;
  }
}

/** Every option name, honoured or fixed (for docs and tests). */
export const OLLAMA_OPTION_NAMES: readonly string[] = [...Object.keys(HONOURED), ...Object.keys(FIXED)];
