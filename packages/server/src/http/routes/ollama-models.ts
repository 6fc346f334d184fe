import { Type, type Static } from "@sinclair/typebox";
import type { FastifyPluginAsync } from "fastify";
import { LlmosError } from "../../errors.js";
import {
  isDigest,
  normalizeDigest,
  parseModelName,
  parseOciReference,
  parsePullReference,
  renderRecordModelfile,
  specFromModelfile,
  type CreateSpec,
  type ModelRecord,
  type ParameterValue,
} from "../../store/index.js";
import { callerMaySee } from "../auth/index.js";
import { jsonWithoutContentType } from "../body-guards.js";
import type { HttpDeps } from "../deps.js";
import { FIELD_LIMITS } from "../field-limits.js";
import { ollamaDetails } from "../ollama/translate.js";
import { resolveQuantizeType } from "../../model-jobs/index.js";
import { mergeSpec } from "./models-create-spec.js";
import { afterManifest, respondWithProgress } from "./models-progress.js";

const errorStyle = "ollama" as const;
const ModelName = Type.String({ minLength: 1, maxLength: 300 });
const ModelRef = Type.Object({
  model: Type.Optional(ModelName),
  name: Type.Optional(ModelName),
  verbose: Type.Optional(Type.Boolean()),
});
const CopyBody = Type.Object({ source: ModelName, destination: ModelName });
const PullBody = Type.Object({
  model: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
  insecure: Type.Optional(Type.Boolean()),
  stream: Type.Optional(Type.Boolean()),
});
const Message = Type.Object({
  role: Type.String({ minLength: 1, maxLength: 32 }),
  content: Type.String({ maxLength: 1 << 20 }),
});
const CreateBody = Type.Object({
  model: Type.Optional(ModelName),
  name: Type.Optional(ModelName),
  from: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
  files: Type.Optional(Type.Record(Type.String(), Type.String())),
  adapters: Type.Optional(Type.Record(Type.String(), Type.String())),
  template: Type.Optional(Type.String({ maxLength: FIELD_LIMITS.template })),
  license: Type.Optional(
    Type.Union([
      Type.String({ maxLength: 1 << 20 }),
      Type.Array(Type.String({ maxLength: 1 << 20 }), { maxItems: 16 }),
    ]),
  ),
  system: Type.Optional(Type.String({ maxLength: FIELD_LIMITS.system })),
  parameters: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  messages: Type.Optional(Type.Array(Message, { maxItems: 256 })),
  modelfile: Type.Optional(Type.String({ maxLength: 1 << 20 })),
  quantize: Type.Optional(Type.String({ maxLength: 32 })),
  stream: Type.Optional(Type.Boolean()),
});
const DigestParams = Type.Object({ digest: Type.String({ minLength: 1, maxLength: 100 }) });

/** The model a request names (`model`, or the older `name`). */
function modelOf(body: { model?: string; name?: string } | undefined): string {
  const model = body?.model ?? body?.name;
  if (!model) throw new LlmosError("invalid_request", "model is required");
  return model;
}

/** An entry of Ollama's `/api/tags`. */
export function ollamaTag(record: ModelRecord) {
  return {
    name: record.name,
    model: record.name,
    modified_at: record.modifiedAt,
    size: record.size,
    digest: record.digest.slice("sha256:".length),
    details: ollamaDetails(record),
  };
}

/** Ollama's `parameters` text of `/api/show`: one `name value` line per value, strings quoted. */
export function ollamaParameterText(parameters: Record<string, ParameterValue>): string {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(parameters)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      lines.push(`${key.padEnd(30)} ${typeof v === "string" ? JSON.stringify(v) : String(v)}`);
    }
  }
  return lines.join("\n");
}

/**
 * Ollama-compatible model management: `/api/tags`, `/api/show`, `/api/copy`, `/api/delete`, `/api/pull`,
 * `/api/create`, `HEAD|POST /api/blobs/:digest`. Errors are `{"error": "..."}`.
 */
export function ollamaModelRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    app.addHook("onRequest", jsonWithoutContentType);
    app.get(
      "/api/tags",
      { schema: { summary: "List models (Ollama)", tags: ["ollama"] }, config: { scope: "models:read", errorStyle } },
      async (request) => ({
        models: (await deps.store.list()).filter((m) => callerMaySee(request, m.name)).map(ollamaTag),
      }),
    );

    app.post<{ Body: Static<typeof ModelRef> }>(
      "/api/show",
      {
        schema: { body: ModelRef, summary: "Show a model (Ollama)", tags: ["ollama"] },
        config: { scope: "models:read", errorStyle },
      },
      async (request) => {
        const record = await deps.store.get(modelOf(request.body));
        const d = record.definition;
        const template = d.template ?? record.summary.chatTemplate;
        return {
          ...(d.license !== undefined ? { license: d.license } : {}),
          modelfile: renderRecordModelfile(record),
          parameters: ollamaParameterText(d.parameters),
          template: template ?? "",
          ...(d.system !== undefined ? { system: d.system } : {}),
          details: ollamaDetails(record),
          ...(d.messages.length > 0 ? { messages: d.messages } : {}),
          model_info: await deps.store.metadata(record.name),
          capabilities: ["completion"],
          modified_at: record.modifiedAt,
        };
      },
    );

    app.post<{ Body: Static<typeof CopyBody> }>(
      "/api/copy",
      {
        schema: { body: CopyBody, summary: "Copy a model (Ollama)", tags: ["ollama"] },
        config: { scope: "models:write", errorStyle, audit: "model.copy" },
      },
      async (request, reply) => {
        await deps.store.copy(request.body.source, request.body.destination);
        return reply.code(200).send();
      },
    );

    app.delete<{ Body: Static<typeof ModelRef> }>(
      "/api/delete",
      {
        schema: { body: ModelRef, summary: "Delete a model (Ollama)", tags: ["ollama"] },
        config: { scope: "models:write", errorStyle, audit: "model.delete" },
      },
      async (request, reply) => {
        const record = await deps.store.get(modelOf(request.body));
        await deps.scheduler.unload(record.name).catch(() => false);
        await deps.store.remove(record.name);
        return reply.code(200).send();
      },
    );

    app.post<{ Body: Static<typeof PullBody> }>(
      "/api/pull",
      {
        schema: {
          body: PullBody,
          summary:
            "Pull a model from a registry (Ollama's library by default), Hugging Face or a URL (Ollama; NDJSON progress)",
          tags: ["ollama"],
        },
        config: { scope: "models:write", errorStyle, audit: "model.pull" },
      },
      async (request, reply) => {
        const reference = modelOf(request.body);
        const registry = parsePullReference(reference).kind === "oci";
        // Ollama clients keep using the exact string they pulled: register under it when it is a valid name.
        const name = validName(reference);
        return respondWithProgress(request, reply, {
          stream: request.body.stream ?? true,
          style: errorStyle,
          run: (onProgress, signal) =>
            deps.store.pull(reference, {
              endpoint: deps.config.hfEndpoint,
              ...(deps.config.hfToken ? { hfToken: deps.config.hfToken } : {}),
              ...(name !== undefined ? { name } : {}),
              ...(request.body.insecure ? { insecure: true } : {}),
              onProgress,
              signal,
            }),
          final: () => ({ status: "success" }),
          ...(registry ? { openOn: afterManifest } : {}),
        });
      },
    );

    app.post<{ Body: Static<typeof PullBody> }>(
      "/api/push",
      {
        schema: {
          body: PullBody,
          summary: "Push a model to the registry its name names (Ollama; NDJSON progress)",
          tags: ["ollama"],
        },
        config: { scope: "models:write", errorStyle, audit: "model.push" },
      },
      async (request, reply) => {
        // Ollama pushes a model to where its own name points: `registry.example.com/team/model:tag`.
        const name = modelOf(request.body);
        const record = await deps.store.get(name);
        parseOciReference(name);
        return respondWithProgress(request, reply, {
          stream: request.body.stream ?? true,
          style: errorStyle,
          run: (onProgress, signal) =>
            deps.store.push(record.name, name, {
              ...(request.body.insecure ? { insecure: true } : {}),
              onProgress,
              signal,
            }),
          final: () => ({ status: "success" }),
        });
      },
    );

    app.post<{ Body: Static<typeof CreateBody> }>(
      "/api/create",
      {
        schema: { body: CreateBody, summary: "Create a model (Ollama; NDJSON progress)", tags: ["ollama"] },
        config: { scope: "models:write", errorStyle, audit: "model.create" },
      },
      async (request, reply) => {
        const body = request.body;
        const name = modelOf(body);
        parseModelName(name);
        const quantizer = deps.modelJobs?.quantizer;
        if (body.quantize && !quantizer) throw new LlmosError("invalid_request", "quantize is not available");
        const target = body.quantize ? resolveQuantizeType(body.quantize) : undefined;
        const spec = mergeSpec(
          body.modelfile === undefined ? undefined : specFromModelfile(body.modelfile),
          fieldsOf(body),
        );
        if (!spec.from) throw new LlmosError("invalid_request", "give `from`, `files` or a `modelfile` with FROM");
        return respondWithProgress(request, reply, {
          stream: body.stream ?? true,
          style: errorStyle,
          run: (onProgress, signal) =>
            deps.store.createFromSpec(name, spec, {
              onProgress,
              signal,
              // Ollama quantizes the FROM weights before writing the manifest; so does llmos.
              ...(target && quantizer
                ? {
                    transformModel: (source) => quantizer.quantizeWeights(source, target, {}, onProgress, signal),
                  }
                : {}),
              resolvePath: (ref, what) => deps.importPolicy.resolve(ref, what),
            }),
          final: () => ({ status: "success" }),
        });
      },
    );

    app.head<{ Params: Static<typeof DigestParams> }>(
      "/api/blobs/:digest",
      {
        schema: { params: DigestParams, summary: "Does a blob exist (Ollama)", tags: ["ollama"] },
        config: { scope: "models:read", errorStyle },
      },
      async (request, reply) => reply.code((await deps.store.hasBlob(request.params.digest)) ? 200 : 404).send(),
    );

    // Blob bodies are streamed to disk as they come: no body parser (and so no JSON body limit) in this scope.
    await app.register(async (scope) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser("*", (_request, _payload, done) => done(null, undefined));
      scope.post<{ Params: Static<typeof DigestParams> }>(
        "/api/blobs/:digest",
        {
          schema: { params: DigestParams, summary: "Upload a blob by its sha256 (Ollama)", tags: ["ollama"] },
          config: { scope: "models:write", errorStyle },
        },
        async (request, reply) => {
          const digest = normalizeDigest(request.params.digest);
          const length = Number(request.headers["content-length"]);
          await deps.store.putBlob(
            digest,
            request.raw,
            Number.isSafeInteger(length) && length > 0 ? { expectedSize: length } : {},
          );
          return reply.code(201).send();
        },
      );
    });
  };
}

/** The Ollama create body's fields as a create spec (files/adapters name uploaded blobs by digest). */
function fieldsOf(body: Static<typeof CreateBody>): Partial<CreateSpec> {
  const out: Partial<CreateSpec> = {};
  const files = Object.entries(body.files ?? {});
  if (files.length > 0) {
    const ggufs = files.filter(([file]) => /\.gguf$/i.test(file));
    const chosen = ggufs.length > 0 ? ggufs : files;
    if (chosen.length !== 1) {
      throw new LlmosError(
        "invalid_request",
        `files: give exactly one GGUF file (split or safetensors models are not supported); got ${files.map(([f]) => f).join(", ")}`,
      );
    }
    out.from = checkedDigest(chosen[0]![1], `files["${chosen[0]![0]}"]`);
  } else if (body.from !== undefined) {
    out.from = body.from;
  }
  const adapters = Object.entries(body.adapters ?? {});
  if (adapters.length > 0)
    out.adapters = adapters.map(([file, digest]) => checkedDigest(digest, `adapters["${file}"]`));
  if (body.parameters !== undefined) out.parameters = body.parameters;
  if (body.system !== undefined) out.system = body.system;
  if (body.template !== undefined) out.template = body.template;
  if (body.messages !== undefined) out.messages = body.messages;
  if (body.license !== undefined) out.license = Array.isArray(body.license) ? body.license.join("\n\n") : body.license;
  return out;
}

function checkedDigest(value: string, where: string): string {
  if (!isDigest(value))
    throw new LlmosError("invalid_request", `${where}: expected sha256:<64 hex digits>, got ${JSON.stringify(value)}`);
  return normalizeDigest(value);
}

function validName(reference: string): string | undefined {
  try {
    parseModelName(reference);
    return reference;
  } catch {
    return undefined;
  }
}
