/** Wire types of quantization and quality evaluation: `POST /api/models/quantize` and the jobs API. */

/** Element types of the K and V caches. */
export type KvCacheType = "f16" | "q8_0" | "q4_0";

/** Every {@link KvCacheType}, for validation and help. */
export const KV_CACHE_TYPES: readonly KvCacheType[] = ["f16", "q8_0", "q4_0"];

/** `POST /api/models/quantize`: a new model from an existing one, quantized. NDJSON progress by default. */
export interface QuantizeRequest {
  /** The model to quantize. */
  model: string;
  /** Name of the new model. */
  name: string;
  /** Target type, e.g. `Q4_K_M` (a 400 lists the valid ones). */
  type: string;
  /** An importance matrix: `sha256:<hex>` of an uploaded blob, or a GGUF path the daemon can read. */
  imatrix?: string;
  /** No k-quant mixes: every quantizable tensor to the type's base type. */
  pure?: boolean;
  /** Allow quantizing a model that is already quantized. */
  allowRequantize?: boolean;
  stream?: boolean;
}

/** `POST /api/jobs/eval`: perplexity of a model over a text, and with a base model the KL divergence. */
export interface EvalRequest {
  model: string;
  /** Compare with this model (same vocabulary). */
  base?: string;
  /** The evaluation text (UTF-8). */
  text: string;
  /** Tokens per chunk (llama-perplexity's `-c`). Default 128. */
  contextSize?: number;
  /** Evaluate at most this many chunks. */
  maxChunks?: number;
  /** K and V cache type of the model's context (default f16), e.g. to measure a quantized KV cache's cost. */
  kvCacheType?: KvCacheType;
  /** K and V cache type of the base's context. Default f16. */
  baseKvCacheType?: KvCacheType;
}

/** What an eval job found. */
export interface EvalReport {
  model: string;
  base?: string;
  contextSize: number;
  chunks: number;
  /** Positions scored (the second half of each chunk). */
  tokens: number;
  textTokens: number;
  perplexity: number;
  basePerplexity?: number;
  /** perplexity / basePerplexity. */
  perplexityRatio?: number;
  /** KL divergence of the model's token distributions from the base's, nats per position. */
  kld?: { mean: number; median: number; p99: number; max: number };
  /** Share of positions where both models' most likely token is the same. */
  topTokenAgreement?: number;
  kvCacheType: KvCacheType;
  baseKvCacheType?: KvCacheType;
}

/** `POST /api/jobs/imatrix`: an importance matrix of a model over a text. */
export interface ImatrixRequest {
  model: string;
  text: string;
  /** Name recorded in the file (`imatrix.datasets`). Default "text". */
  textName?: string;
  /** Tokens per chunk. Default 512 (capped at the model's training context). */
  contextSize?: number;
  maxChunks?: number;
}

/** What an imatrix job made: a GGUF file stored as a blob (kept an hour unless a model uses it). */
export interface ImatrixReport {
  model: string;
  /** `sha256:<hex>`: pass it as `imatrix` to a quantize; download it from `GET /api/jobs/{id}/output`. */
  digest: string;
  size: number;
  entries: number;
  chunks: number;
  chunkSize: number;
}

/** Where a job is. */
export type JobState = "queued" | "running" | "succeeded" | "failed" | "cancelled";

/** A job as `GET /api/jobs/{id}` shows it. */
export interface JobView {
  id: string;
  kind: "eval" | "imatrix";
  state: JobState;
  model: string;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** Chunks done of all. */
  progress: { done: number; total: number };
  result?: EvalReport | ImatrixReport;
  error?: { code: string; message: string };
}
