import type { ModelOrigin } from "@llmos/protocol";
import { LlmosError } from "../errors.js";
import type { ModelDefinition } from "./definition.js";
import { isDigest } from "./digest.js";

/** Reference to a blob: digest `sha256:<hex>` and size in bytes. */
export interface BlobRef {
  digest: string;
  size: number;
}

/** How a quantized model was made (`llmos quantize`): recorded in its manifest. */
export interface QuantizationRecord {
  /** `sha256:<hex>` of the weights it was quantized from. */
  sourceDigest: string;
  /** The target type, e.g. "Q4_K_M". */
  type: string;
  /** Tensors in the file. */
  tensors: number;
  /** Tensors whose row size did not fit the type's block size, written in another type by llama.cpp. */
  fallbackTensors: number;
  /** `sha256:<hex>` of the importance matrix used, if any. */
  imatrixDigest?: string;
  /** Quantized with `--pure` (no k-quant mixes). */
  pure?: boolean;
}

/** The JSON stored at `manifests/<name>/<tag>.json`. */
export interface Manifest {
  schemaVersion: 1;
  /** The GGUF weights. */
  model: BlobRef;
  /** LoRA adapters (GGUF), applied in order. */
  adapters: BlobRef[];
  /** Multimodal projectors (GGUF) pulled with the model: kept, not used yet. Absent when none. */
  projectors?: BlobRef[];
  definition: ModelDefinition;
  /** The registry manifest the model was pulled from (absent for imports, creates and Hub pulls). */
  origin?: ModelOrigin;
  /** ISO-8601 time the manifest was written. */
  createdAt: string;
  /** Present on models made by `llmos quantize`. */
  quantization?: QuantizationRecord;
}

/** Current manifest schema version. */
export const MANIFEST_SCHEMA_VERSION = 1;

function isBlobRef(value: unknown): value is BlobRef {
  const v = value as BlobRef;
  return (
    typeof v === "object" &&
    v !== null &&
    typeof v.digest === "string" &&
    isDigest(v.digest) &&
    v.digest.startsWith("sha256:") &&
    Number.isSafeInteger(v.size) &&
    v.size >= 0
  );
}

function isQuantizationRecord(value: unknown): value is QuantizationRecord {
  const q = value as QuantizationRecord;
  return (
    typeof q === "object" &&
    q !== null &&
    typeof q.sourceDigest === "string" &&
    isDigest(q.sourceDigest) &&
    typeof q.type === "string" &&
    Number.isSafeInteger(q.tensors) &&
    Number.isSafeInteger(q.fallbackTensors) &&
    (q.imatrixDigest === undefined || (typeof q.imatrixDigest === "string" && isDigest(q.imatrixDigest)))
  );
}

/**
 * Parses and checks a manifest file's text.
 * @throws LlmosError `internal` naming the file when it is not a valid manifest (a damaged store).
 */
export function parseManifest(text: string, file: string): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new LlmosError("internal", `damaged manifest ${file}: not JSON`, undefined, { cause: error });
  }
  const m = value as Manifest;
  const ok =
    typeof m === "object" &&
    m !== null &&
    m.schemaVersion === MANIFEST_SCHEMA_VERSION &&
    isBlobRef(m.model) &&
    Array.isArray(m.adapters) &&
    m.adapters.every(isBlobRef) &&
    (m.projectors === undefined || (Array.isArray(m.projectors) && m.projectors.every(isBlobRef))) &&
    (m.origin === undefined || isOrigin(m.origin)) &&
    typeof m.definition === "object" &&
    m.definition !== null &&
    typeof m.definition.parameters === "object" &&
    Array.isArray(m.definition.messages) &&
    typeof m.createdAt === "string" &&
    (m.quantization === undefined || isQuantizationRecord(m.quantization));
  if (!ok) throw new LlmosError("internal", `damaged manifest ${file}: unexpected shape or schema version`);
  return m;
}

function isOrigin(value: unknown): value is ModelOrigin {
  const o = value as ModelOrigin;
  return (
    typeof o === "object" &&
    o !== null &&
    typeof o.registry === "string" &&
    typeof o.repository === "string" &&
    (o.tag === undefined || typeof o.tag === "string") &&
    typeof o.manifestDigest === "string" &&
    typeof o.mediaType === "string"
  );
}

/** Serialises a manifest (stable, human-readable). */
export function serializeManifest(manifest: Manifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** Every blob a manifest references. */
export function manifestBlobs(manifest: Manifest): BlobRef[] {
  return [manifest.model, ...manifest.adapters, ...(manifest.projectors ?? [])];
}
