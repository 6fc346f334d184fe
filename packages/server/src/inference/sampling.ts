import type { SamplingOptions } from "../engine/engine.js";
import { LlmosError } from "../errors.js";

/** Sampling knobs as the APIs name them (Ollama option names; OpenAI fields are mapped onto these). */
export interface SamplingInput {
  temperature?: number;
  top_k?: number;
  top_p?: number;
  min_p?: number;
  seed?: number;
  repeat_penalty?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  repeat_last_n?: number;
  num_predict?: number;
  stop?: string[];
}

/** llmos defaults when neither the request nor the model definition says otherwise (llama.cpp's defaults). */
export const SAMPLING_DEFAULTS: Required<Omit<SamplingInput, "seed" | "stop" | "num_predict">> = {
  temperature: 0.8,
  top_k: 40,
  top_p: 0.95,
  min_p: 0.05,
  repeat_penalty: 1.0,
  presence_penalty: 0,
  frequency_penalty: 0,
  repeat_last_n: 64,
};

export interface ResolvedSampling {
  sampling: SamplingOptions;
  /** Requested max tokens (undefined = until the context is full or the model stops). */
  maxTokens: number | undefined;
  stop: string[];
}

/**
 * Merges request options over model-definition defaults over llmos defaults, and checks ranges so that a bad
 * value is an error, never silently clamped.
 */
export function resolveSampling(
  request: SamplingInput,
  modelDefaults: Record<string, unknown>,
  maxTokensLimit: number,
): ResolvedSampling {
  const pick = <K extends keyof SamplingInput>(key: K): SamplingInput[K] | undefined =>
    (request[key] ?? (modelDefaults[key] as SamplingInput[K] | undefined)) as SamplingInput[K] | undefined;
  const num = (key: keyof typeof SAMPLING_DEFAULTS, min: number, max: number): number => {
    const v = pick(key) as number | undefined;
    const value = v ?? SAMPLING_DEFAULTS[key];
    if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
      throw new LlmosError(
        "invalid_request",
        `${key} must be a number between ${min} and ${max}, got ${JSON.stringify(v)}`,
        { param: key },
      );
    }
    return value;
  };
  const temperature = num("temperature", 0, 100);
  const sampling: SamplingOptions = {
    temperature,
    topK: Math.round(num("top_k", 0, 1_000_000)),
    topP: num("top_p", 0, 1),
    minP: num("min_p", 0, 1),
    repeatPenalty: num("repeat_penalty", 0, 100),
    presencePenalty: num("presence_penalty", -100, 100),
    frequencyPenalty: num("frequency_penalty", -100, 100),
    penaltyLastN: Math.round(num("repeat_last_n", 0, 1_000_000)),
  };
  const seed = pick("seed");
  if (seed !== undefined) {
    if (!Number.isInteger(seed) || seed < -(2 ** 53) || seed > 2 ** 53)
      throw new LlmosError("invalid_request", `seed must be an integer, got ${JSON.stringify(seed)}`, {
        param: "seed",
      });
    sampling.seed = seed >>> 0;
  }
  const requested = pick("num_predict");
  let maxTokens: number | undefined;
  if (requested !== undefined && requested !== -1 && requested !== -2) {
    if (!Number.isInteger(requested) || requested < 0)
      throw new LlmosError(
        "invalid_request",
        `max tokens must be a non-negative integer, got ${JSON.stringify(requested)}`,
        { param: "max_tokens" },
      );
    if (requested > maxTokensLimit)
      throw new LlmosError(
        "invalid_request",
        `max tokens ${requested} is over this server's limit of ${maxTokensLimit}`,
        { param: "max_tokens" },
      );
    maxTokens = requested;
  }
  const stopValue = pick("stop");
  const stop = stopValue === undefined ? [] : Array.isArray(stopValue) ? stopValue : [stopValue as unknown as string];
  return { sampling, maxTokens, stop };
}
