/**
 * `llmos eval` and `llmos imatrix` as jobs: requests are checked at once (a bad one is a 400 and no job), then the
 * work runs in a model-tool worker, queued in the {@link JobRegistry}. The models are leased from the store for
 * the job's duration, so a model removed meanwhile keeps its files until the job ends.
 */
import { rm } from "node:fs/promises";
import {
  KV_CACHE_TYPES,
  type EvalReport,
  type EvalRequest,
  type ImatrixReport,
  type ImatrixRequest,
  type JobView,
  type KvCacheType,
} from "@llmos/protocol";
import { LlmosError } from "../errors.js";
import type { EvalResult, ImatrixResult } from "../runner/tool-ipc-protocol.js";
import type { ToolWorkers } from "../runtime/tool-worker.js";
import {
  adoptDerivedFile,
  commitLooseBlob,
  derivedFilePath,
  type ModelRecord,
  type ModelStore,
} from "../store/index.js";
import type { JobRegistry } from "./job-registry.js";
import type { JobMemory } from "./job-memory.js";

/** How long an importance matrix blob is kept when no model references it. */
const IMATRIX_KEEP_MS = 60 * 60 * 1000;
/** Largest text a job takes (characters). */
const MAX_TEXT = 8 * 1024 * 1024;

export class QualityJobs {
  constructor(
    private readonly store: ModelStore,
    private readonly workers: ToolWorkers,
    private readonly jobs: JobRegistry,
    private readonly threads: number,
    private readonly memory: JobMemory,
  ) {}

  /** Starts an eval job. @throws `model_not_found`, `invalid_request`. */
  async startEval(req: EvalRequest, owner: string | null = null): Promise<JobView> {
    checkText(req.text);
    const contextSize = checkContext(req.contextSize ?? 128);
    const kv = kvType(req.kvCacheType, "kvCacheType");
    const baseKv = kvType(req.baseKvCacheType, "baseKvCacheType");
    const model = await this.store.get(req.model);
    const base = req.base !== undefined ? await this.store.get(req.base) : undefined;
    checkHeads(model, kv);
    if (base) checkHeads(base, baseKv);
    return this.jobs.submit(
      "eval",
      model.name,
      async (progress, signal) => {
        // Store leases and the memory reservation, given back when the job ends.
        const held: Array<{ release(): void }> = [];
        try {
          const m = await this.store.acquire(model.name);
          held.push(m);
          const b = base ? await this.store.acquire(base.name) : undefined;
          if (b) held.push(b);
          // The worker holds the model and the base (when given) loaded together.
          const models = [{ summary: m.record.summary, contextSize, kvCacheType: kv }];
          if (b) models.push({ summary: b.record.summary, contextSize, kvCacheType: baseKv });
          const workload = { kind: "load" as const, models };
          const reservation = await this.memory.reserveJobMemory({ job: "eval", model: model.name, workload }, signal);
          held.push(reservation);
          const result = await this.workers.run<EvalResult>(
            {
              kind: "eval",
              modelPath: m.modelPath,
              ...(b ? { basePath: b.modelPath, baseKvCacheType: { k: baseKv, v: baseKv } } : {}),
              text: req.text,
              contextSize,
              threads: this.threads,
              kvCacheType: { k: kv, v: kv },
              ...(req.maxChunks !== undefined ? { maxChunks: req.maxChunks } : {}),
            },
            { onProgress: (p) => progress(p.done, p.total), memoryBytes: reservation.bytes },
            signal,
          );
          const report: EvalReport = {
            model: model.name,
            ...(base ? { base: base.name, baseKvCacheType: baseKv } : {}),
            contextSize: result.contextSize,
            chunks: result.chunks,
            tokens: result.tokens,
            textTokens: result.textTokens,
            perplexity: result.perplexity,
            kvCacheType: kv,
          };
          if (result.basePerplexity !== undefined) report.basePerplexity = result.basePerplexity;
          if (result.perplexityRatio !== undefined) report.perplexityRatio = result.perplexityRatio;
          if (result.kld !== undefined) report.kld = result.kld;
          if (result.topTokenAgreement !== undefined) report.topTokenAgreement = result.topTokenAgreement;
          return report;
        } finally {
          for (const h of held.reverse()) h.release();
        }
      },
      base ? [base.name] : [],
      owner,
    );
  }

  /** Starts an imatrix job; its result names the blob holding the file. @throws `model_not_found`, `invalid_request`. */
  async startImatrix(req: ImatrixRequest, owner: string | null = null): Promise<JobView> {
    checkText(req.text);
    const model = await this.store.get(req.model);
    const trained = model.summary.contextLength ?? 512;
    const contextSize = checkContext(req.contextSize ?? Math.min(512, trained));
    const textName = req.textName ?? "text";
    return this.jobs.submit(
      "imatrix",
      model.name,
      async (progress, signal) => {
        const lease = await this.store.acquire(model.name);
        const output = derivedFilePath(this.store, "imatrix");
        let reservation: { readonly bytes: number; release(): void } | undefined;
        try {
          const models = [{ summary: lease.record.summary, contextSize, kvCacheType: "f16" as const }];
          reservation = await this.memory.reserveJobMemory(
            { job: "imatrix", model: model.name, workload: { kind: "load", models } },
            signal,
          );
          const result = await this.workers.run<ImatrixResult>(
            {
              kind: "imatrix",
              modelPath: lease.modelPath,
              text: req.text,
              datasetName: textName,
              output,
              contextSize,
              threads: this.threads,
              ...(req.maxChunks !== undefined ? { maxChunks: req.maxChunks } : {}),
            },
            {
              onProgress: (p) => progress(p.done, p.total),
              memoryBytes: reservation.bytes,
              // An importance matrix holds one value per input column of each weight matrix: far less than the model.
              outputLimitBytes: Math.max(model.size, 16 * 1024 * 1024),
            },
            signal,
          );
          const temp = await adoptDerivedFile(this.store, output, "the importance matrix", "imatrix");
          const blob = await commitLooseBlob(this.store, temp, IMATRIX_KEEP_MS);
          const report: ImatrixReport = { model: model.name, ...blob, ...result };
          return report;
        } finally {
          reservation?.release();
          lease.release();
          await rm(output, { force: true }); // gone already when it was committed
        }
      },
      [],
      owner,
    );
  }
}

/** A quantized cache needs head sizes that are multiples of 32 (llama.cpp refuses the context otherwise). */
function checkHeads(record: ModelRecord, kv: KvCacheType): void {
  const s = record.summary;
  const headDim = s.headCount ? (s.embeddingLength ?? 0) / s.headCount : 0;
  if (kv !== "f16" && headDim % 32 !== 0)
    throw new LlmosError(
      "invalid_request",
      `${record.name}: a ${kv} KV cache needs attention heads whose size is a multiple of 32; this model's are ${headDim}`,
    );
}

function checkText(text: unknown): void {
  if (typeof text !== "string" || text.length === 0) throw new LlmosError("invalid_request", "text is required");
  if (text.length > MAX_TEXT) throw new LlmosError("invalid_request", `text is longer than ${MAX_TEXT} characters`);
}

function checkContext(n: number): number {
  if (!Number.isInteger(n) || n < 16 || n > 131072)
    throw new LlmosError("invalid_request", `contextSize must be an integer from 16 to 131072, got ${n}`);
  return n;
}

function kvType(value: string | undefined, field: string): KvCacheType {
  if (value === undefined) return "f16";
  if (!(KV_CACHE_TYPES as readonly string[]).includes(value))
    throw new LlmosError("invalid_request", `${field} must be one of ${KV_CACHE_TYPES.join(", ")}, got "${value}"`);
  return value as KvCacheType;
}
