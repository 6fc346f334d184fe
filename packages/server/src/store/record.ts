import type { ModelDetails, ModelInfo, ModelOrigin, ModelSummary } from "@llmos/protocol";
import type { GgufSummary } from "@llmos/gguf";
import type { ModelDefinition } from "./definition.js";
import type { BlobRef, QuantizationRecord } from "./manifest.js";
import { renderModelfile } from "./modelfile/render.js";

/** A blob with its path on disk. */
export interface BlobFile extends BlobRef {
  path: string;
}

/** A registered model as the store sees it. */
export interface ModelRecord {
  /** Canonical `name:tag`. */
  name: string;
  /** `sha256:<hex>` of the weights blob. */
  digest: string;
  /** Bytes of all blobs the model references (weights + adapters). */
  size: number;
  /** ISO-8601 time the manifest was written. */
  modifiedAt: string;
  /** Absolute path of the weights blob (a GGUF file). */
  modelPath: string;
  /** LoRA adapters, in order. */
  adapters: BlobFile[];
  /** Multimodal projectors pulled with the model (not used yet). */
  projectors: BlobFile[];
  /** The registry manifest the model was pulled from, if it was. */
  origin?: ModelOrigin;
  /** What the GGUF header says. */
  summary: GgufSummary;
  /** Request defaults, prompts, license. */
  definition: ModelDefinition;
  /** How the model was quantized by llmos (source digest, type, fallback tensors), if it was. */
  quantization?: QuantizationRecord;
}

/** The protocol's `details` of a record (facts the GGUF lacks are 0). */
export function toModelDetails(record: ModelRecord): ModelDetails {
  const s = record.summary;
  return {
    format: "gguf",
    architecture: s.architecture,
    parameterCount: s.parameterCount,
    parameterSize: s.parameterSize,
    quantization: s.quantization,
    contextLength: s.contextLength ?? 0,
    embeddingLength: s.embeddingLength ?? 0,
    blockCount: s.blockCount ?? 0,
    headCount: s.headCount ?? 0,
    headCountKv: s.headCountKv ?? 0,
    vocabSize: s.vocabSize ?? 0,
    hasChatTemplate: typeof s.chatTemplate === "string" && s.chatTemplate.length > 0,
  };
}

/** `GET /api/models` entry of a record. */
export function toModelSummary(record: ModelRecord): ModelSummary {
  return {
    name: record.name,
    digest: record.digest,
    size: record.size,
    modifiedAt: record.modifiedAt,
    details: toModelDetails(record),
  };
}

/** The definition rendered as Modelfile text whose FROM/ADAPTER lines name the blobs (so it re-creates the model). */
export function renderRecordModelfile(record: ModelRecord): string {
  return renderModelfile(record.definition, {
    from: record.digest,
    adapters: record.adapters.map((a) => a.digest),
  });
}

/** Options of {@link toModelInfo}. */
export interface ModelInfoOptions {
  /** GGUF metadata for display (e.g. from `ModelStore.metadata(name)`); omitted when absent. */
  metadata?: Record<string, unknown>;
}

/** `GET /api/models/{name}` body of a record. */
export function toModelInfo(record: ModelRecord, options: ModelInfoOptions = {}): ModelInfo {
  const d = record.definition;
  const info: ModelInfo = {
    ...toModelSummary(record),
    parameters: { ...d.parameters },
    modelfile: renderRecordModelfile(record),
  };
  if (d.system !== undefined) info.system = d.system;
  // The definition's template wins; otherwise show the GGUF's own chat template.
  const template = d.template ?? record.summary.chatTemplate;
  if (template !== undefined) info.template = template;
  if (record.adapters.length > 0) info.adapters = record.adapters.map((a) => a.digest);
  if (d.messages.length > 0) info.messages = d.messages.map((m) => ({ ...m }));
  if (d.license !== undefined) info.license = d.license;
  if (record.origin !== undefined) info.origin = { ...record.origin };
  if (record.projectors.length > 0) info.projectors = record.projectors.map((p) => p.digest);
  if (options.metadata !== undefined) info.metadata = options.metadata;
  if (record.quantization !== undefined) info.quantizedFrom = { ...record.quantization };
  return info;
}
