import { rm } from "node:fs/promises";
import path from "node:path";
import { looksLikePath } from "@llmos/protocol";
import { LlmosError } from "../errors.js";
import type { TempBlob } from "./blob-files.js";
import type { DefinitionMessage, ModelDefinition, ParameterValue } from "./definition.js";
import { isDigest, normalizeDigest } from "./digest.js";
import { parseModelfile } from "./modelfile/parse.js";
import { validateParameters } from "./modelfile/parameters.js";
import type { QuantizationRecord } from "./manifest.js";
import type { ModelRecord } from "./record.js";
import type { BlobSource, CreateTarget } from "./registrar.js";

/** One progress event of a create, in Ollama's shape. */
export interface CreateProgress {
  status: string;
  digest?: string;
}

/** What a new model is made of, by reference (Ollama's `/api/create` fields, or a parsed Modelfile). */
export interface CreateSpec {
  /** An existing model name, a GGUF file path, or a blob digest `sha256:<hex>`. */
  from: string;
  /** LoRA adapters: GGUF file paths or blob digests. Added after the base model's own adapters. */
  adapters?: string[];
  /** Request defaults; merged over the base model's (a name given here replaces the base's value). */
  parameters?: Record<string, unknown>;
  system?: string;
  template?: string;
  /** Replaces the base model's messages when given. */
  messages?: DefinitionMessage[];
  license?: string;
}

/** Options of a create. */
export interface CreateOptions {
  onProgress?: (event: CreateProgress) => void;
  signal?: AbortSignal;
  /** Folder relative paths in FROM/ADAPTER are resolved against. Default: the process's working folder. */
  baseDir?: string;
  /**
   * Replaces the weights before the model is registered (quantization: `llmos quantize`, Ollama's `quantize`):
   * receives the resolved weights file and returns the new weights as a temp blob, with its quantization record.
   */
  transformModel?: (model: { digest: string; path: string }) => Promise<{
    model: TempBlob;
    quantization: QuantizationRecord;
  }>;
  /**
   * Decides which file a FROM/ADAPTER path may name and returns the path to read (e.g. the HTTP layer's import
   * policy, which refuses paths outside LLMOS_IMPORT_DIRS). Default: any path, resolved against `baseDir`.
   */
  resolvePath?: (ref: string, what: string) => Promise<string>;
}

/** A FROM/ADAPTER blob reference: `sha256:<hex>`, or `@sha256:<hex>` as Ollama's CLI writes it. */
export function blobReference(ref: string): string | undefined {
  const bare = ref.startsWith("@") ? ref.slice(1) : ref;
  return isDigest(bare) ? normalizeDigest(bare) : undefined;
}

/**
 * Creates (or replaces) `name` from a spec. A FROM model is shared, not copied: the new manifest references the
 * base's blobs and inherits its definition, overridden by the spec. Files named by path are imported (validated as
 * GGUF) first.
 * @throws `model_not_found` (FROM model), `not_found` (file or blob), `invalid_model_file`, `invalid_request`.
 */
export async function createModel(
  store: CreateTarget,
  name: string,
  spec: CreateSpec,
  options: CreateOptions = {},
): Promise<ModelRecord> {
  const progress = options.onProgress ?? (() => {});
  const baseDir = options.baseDir ?? process.cwd();
  const temps: TempBlob[] = [];
  const parameters = spec.parameters ? validateParameters(spec.parameters, "parameters: ") : {};
  for (const m of spec.messages ?? []) {
    if (typeof m?.role !== "string" || typeof m.content !== "string") {
      throw new LlmosError("invalid_request", "messages: each message needs a string role and content");
    }
  }
  const resolveFile = async (ref: string, what: string): Promise<TempBlob> => {
    const file = options.resolvePath
      ? await options.resolvePath(ref, `${what} ${ref}`)
      : path.resolve(baseDir, ref.startsWith("~/") ? ref.slice(2) : ref);
    progress({ status: `copying file ${path.basename(file)}` });
    const temp = await store.ingestGgufFile(file, options.signal, `${what} ${ref}`);
    temps.push(temp);
    progress({ status: `creating new layer ${temp.digest}`, digest: temp.digest });
    return temp;
  };
  const resolveDigest = async (ref: string, what: string): Promise<BlobSource> => {
    const digest = normalizeDigest(ref);
    const size = await store.blobs.size(digest);
    if (size === undefined) {
      throw new LlmosError(
        "not_found",
        `${what} ${digest} is not in the store (upload it with POST /api/blobs/${digest})`,
      );
    }
    // A blob uploaded by a client was only checked against its digest: make sure it is a GGUF file.
    await store.gguf.check(store.blobPath(digest), `${what} ${digest}`);
    progress({ status: `using existing layer ${digest}`, digest });
    return { digest, size };
  };

  try {
    progress({ status: "parsing modelfile" });
    let model: BlobSource;
    let adapters: BlobSource[] = [];
    let projectors: BlobSource[] = [];
    let definition: ModelDefinition;
    let quantization: QuantizationRecord | undefined;
    const fromBlob = blobReference(spec.from);
    if (fromBlob) {
      model = await resolveDigest(fromBlob, "FROM blob");
      definition = { from: fromBlob, parameters: {}, messages: [] };
    } else if (looksLikePath(spec.from)) {
      model = await resolveFile(spec.from, "FROM file");
      definition = { from: spec.from, parameters: {}, messages: [] };
    } else {
      const base = await store.get(spec.from);
      const extra = [...base.adapters, ...base.projectors].reduce((s, b) => s + b.size, 0);
      model = { digest: base.digest, size: base.size - extra };
      adapters = base.adapters.map((a) => ({ digest: a.digest, size: a.size }));
      projectors = base.projectors.map((p) => ({ digest: p.digest, size: p.size }));
      progress({ status: `using existing layer ${base.digest}`, digest: base.digest });
      definition = structuredClone({ ...base.definition, from: base.name });
      quantization = base.quantization;
    }
    if (options.transformModel) {
      const path = "tmpPath" in model ? model.tmpPath : store.blobPath(model.digest);
      const out = await options.transformModel({ digest: model.digest, path });
      temps.push(out.model);
      ({ model, quantization } = out);
    }
    for (const ref of spec.adapters ?? []) {
      const blob = blobReference(ref);
      adapters.push(blob ? await resolveDigest(blob, "ADAPTER blob") : await resolveFile(ref, "ADAPTER file"));
    }
    definition.parameters = { ...definition.parameters, ...(parameters as Record<string, ParameterValue>) };
    if (spec.system !== undefined) definition.system = spec.system;
    if (spec.template !== undefined) definition.template = spec.template;
    if (spec.messages !== undefined)
      definition.messages = spec.messages.map((m) => ({ role: m.role, content: m.content }));
    if (spec.license !== undefined) definition.license = spec.license;
    options.signal?.throwIfAborted();
    progress({ status: "writing manifest" });
    const record = await store.register(name, {
      model,
      adapters,
      projectors,
      definition,
      ...(quantization ? { quantization } : {}),
    });
    progress({ status: "success" });
    return record;
  } finally {
    // register() deletes committed temps' leftovers; this covers failures before it ran.
    for (const t of temps) await rm(t.tmpPath, { force: true });
  }
}

/** Parses Modelfile text into a {@link CreateSpec}. @throws `invalid_request` (with line numbers), e.g. no FROM. */
export function specFromModelfile(text: string): CreateSpec {
  const parsed = parseModelfile(text);
  if (parsed.from === undefined) throw new LlmosError("invalid_request", "Modelfile has no FROM line");
  const spec: CreateSpec = { from: parsed.from, adapters: parsed.adapters, parameters: parsed.parameters };
  if (parsed.system !== undefined) spec.system = parsed.system;
  if (parsed.template !== undefined) spec.template = parsed.template;
  if (parsed.messages.length > 0) spec.messages = parsed.messages;
  if (parsed.license !== undefined) spec.license = parsed.license;
  return spec;
}
