import { Type, type Static } from "@sinclair/typebox";
import type { FastifyPluginAsync } from "fastify";
import { LlmosError } from "../../errors.js";
import {
  parseModelName,
  parseOciReference,
  parsePullReference,
  specFromModelfile,
  toModelInfo,
  toModelSummary,
} from "../../store/index.js";
import { callerMaySee } from "../auth/index.js";
import { noBody } from "../body-guards.js";
import type { HttpDeps } from "../deps.js";
import { FIELD_LIMITS } from "../field-limits.js";
import { mergeSpec } from "./models-create-spec.js";
import { afterManifest, respondWithProgress } from "./models-progress.js";
import { ollamaModelRoutes } from "./ollama-models.js";

const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 300 }) });
const ImportBody = Type.Object(
  {
    path: Type.String({
      minLength: 1,
      maxLength: 4096,
      description:
        "Absolute path of a GGUF file on the daemon's machine, inside a folder of LLMOS_IMPORT_DIRS (else 403 " +
        "path_not_allowed: upload the file with POST /api/blobs/{digest} and create from `@sha256:<hex>`)",
    }),
    name: Type.String({ minLength: 1, maxLength: 300, description: "Target name, name[:tag]" }),
  },
  { additionalProperties: false },
);
const CopyBody = Type.Object(
  { destination: Type.String({ minLength: 1, maxLength: 300 }) },
  { additionalProperties: false },
);
const PullBody = Type.Object(
  {
    reference: Type.String({
      minLength: 1,
      maxLength: 2048,
      description:
        "hf.co/{owner}/{repo}[:{quant}], hf.co/{owner}/{repo}/{file.gguf}, hf://..., huggingface.co/..., an https URL, " +
        "or a registry reference: llama3.2:1b (Ollama's library, or LLMOS_OCI_REGISTRY), " +
        "{registry}/{namespace}/{name}:{tag}, oci://{registry}/{repository}[:{tag}|@sha256:{digest}]",
    }),
    name: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 300,
        description: "Name to register; default derived from the reference",
      }),
    ),
    revision: Type.Optional(
      Type.String({ minLength: 1, maxLength: 256, description: "Hub branch, tag or commit; default main" }),
    ),
    insecure: Type.Optional(
      Type.Boolean({
        description: "Registry references: plain http to the registry (only where the pull policy allows)",
      }),
    ),
    stream: Type.Optional(Type.Boolean({ description: "NDJSON progress lines (default true)" })),
  },
  { additionalProperties: false },
);
const PushBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 300, description: "The model to push, name[:tag]" }),
    reference: Type.String({
      minLength: 1,
      maxLength: 2048,
      description: "Where to: {registry}/{repository}:{tag} or oci://{registry}/{repository}:{tag}",
    }),
    insecure: Type.Optional(
      Type.Boolean({ description: "Plain http to the registry (only where the pull policy allows)" }),
    ),
    stream: Type.Optional(Type.Boolean({ description: "NDJSON progress lines (default true)" })),
  },
  { additionalProperties: false },
);
const Message = Type.Object(
  { role: Type.String({ minLength: 1, maxLength: 32 }), content: Type.String({ maxLength: 1 << 20 }) },
  { additionalProperties: false },
);
const CreateBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 300, description: "Name of the new model, name[:tag]" }),
    modelfile: Type.Optional(Type.String({ maxLength: 1 << 20, description: "Definition in Modelfile syntax" })),
    from: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 4096,
        description:
          "Base: a model name, sha256:<hex> (or @sha256:<hex>) of an uploaded blob, or a GGUF path inside " +
          "LLMOS_IMPORT_DIRS",
      }),
    ),
    adapters: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 4096 }), { maxItems: 16 })),
    parameters: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    system: Type.Optional(Type.String({ maxLength: FIELD_LIMITS.system })),
    template: Type.Optional(Type.String({ maxLength: FIELD_LIMITS.template })),
    messages: Type.Optional(Type.Array(Message, { maxItems: 256 })),
    license: Type.Optional(Type.String({ maxLength: 1 << 20 })),
    stream: Type.Optional(Type.Boolean({ description: "NDJSON progress lines (default true)" })),
  },
  { additionalProperties: false },
);

/** Native model management: import, pull, create, list, show, copy, delete (and the Ollama-compatible routes). */
export function modelRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    await app.register(ollamaModelRoutes(deps));

    app.post<{ Body: Static<typeof PullBody> }>(
      "/api/models/pull",
      {
        schema: {
          body: PullBody,
          summary: "Pull a model from Hugging Face, a URL or an OCI registry (NDJSON progress)",
          tags: ["models"],
        },
        config: { scope: "models:write", audit: "model.pull" },
      },
      async (request, reply) => {
        const body = request.body;
        // Bad input is a 400 before any stream starts.
        const registry = parsePullReference(body.reference).kind === "oci";
        if (body.name !== undefined) parseModelName(body.name);
        return respondWithProgress(request, reply, {
          stream: body.stream ?? true,
          style: "native",
          run: (onProgress, signal) =>
            deps.store.pull(body.reference, {
              endpoint: deps.config.hfEndpoint,
              ...(deps.config.hfToken ? { hfToken: deps.config.hfToken } : {}),
              ...(body.name !== undefined ? { name: body.name } : {}),
              ...(body.revision !== undefined ? { revision: body.revision } : {}),
              ...(body.insecure ? { insecure: true } : {}),
              onProgress,
              signal,
            }),
          final: (record) => ({ status: "success", model: toModelSummary(record) }),
          ...(registry ? { openOn: afterManifest } : {}),
        });
      },
    );

    app.post<{ Body: Static<typeof PushBody> }>(
      "/api/models/push",
      {
        schema: {
          body: PushBody,
          summary: "Push a model to an OCI registry in Ollama's layer layout (NDJSON progress)",
          tags: ["models"],
        },
        config: { scope: "models:write", audit: "model.push" },
      },
      async (request, reply) => {
        const body = request.body;
        parseOciReference(body.reference);
        await deps.store.get(body.name);
        return respondWithProgress(request, reply, {
          stream: body.stream ?? true,
          style: "native",
          run: (onProgress, signal) =>
            deps.store.push(body.name, body.reference, {
              ...(body.insecure ? { insecure: true } : {}),
              onProgress,
              signal,
            }),
          final: (result) => ({ status: "success", ...result }),
        });
      },
    );

    app.post<{ Body: Static<typeof CreateBody> }>(
      "/api/models/create",
      {
        schema: {
          body: CreateBody,
          summary: "Create a model from a definition (Modelfile syntax or fields)",
          tags: ["models"],
        },
        config: { scope: "models:write", audit: "model.create" },
      },
      async (request, reply) => {
        const { name, modelfile, stream, ...fields } = request.body;
        parseModelName(name);
        if (modelfile === undefined && fields.from === undefined) {
          throw new LlmosError("invalid_request", "give `modelfile` or `from`");
        }
        // Syntax errors are a 400 before any stream starts; explicit fields override the Modelfile's.
        const spec = mergeSpec(modelfile === undefined ? undefined : specFromModelfile(modelfile), fields);
        return respondWithProgress(request, reply, {
          stream: stream ?? true,
          style: "native",
          run: (onProgress, signal) =>
            deps.store.createFromSpec(name, spec, {
              onProgress,
              signal,
              resolvePath: (ref, what) => deps.importPolicy.resolve(ref, what),
            }),
          final: (record) => ({ status: "success", model: toModelSummary(record) }),
        });
      },
    );

    app.post<{ Body: Static<typeof ImportBody> }>(
      "/api/models/import",
      {
        schema: { body: ImportBody, summary: "Import a local GGUF file under a name", tags: ["models"] },
        config: { scope: "models:write", audit: "model.import" },
      },
      async (request) => {
        parseModelName(request.body.name);
        const file = await deps.importPolicy.resolve(request.body.path, "path");
        const record = await deps.store.importFile(file, request.body.name);
        return toModelInfo(record);
      },
    );

    app.get(
      "/api/models",
      { schema: { summary: "List models", tags: ["models"] }, config: { scope: "models:read" } },
      async (request) => ({
        models: (await deps.store.list()).filter((m) => callerMaySee(request, m.name)).map(toModelSummary),
      }),
    );

    app.get<{ Params: Static<typeof NameParams> }>(
      "/api/models/:name",
      {
        schema: {
          params: NameParams,
          summary: "Show a model: details, parameters, template, metadata",
          tags: ["models"],
        },
        config: { scope: "models:read" },
      },
      async (request) => {
        const record = await deps.store.get(request.params.name);
        return toModelInfo(record, { metadata: await deps.store.metadata(record.name) });
      },
    );

    app.delete<{ Params: Static<typeof NameParams> }>(
      "/api/models/:name",
      {
        schema: {
          params: NameParams,
          summary: "Delete a model (blobs go when nothing references them)",
          tags: ["models"],
        },
        config: { scope: "models:write", audit: "model.delete" },
        preValidation: noBody,
      },
      async (request) => {
        const record = await deps.store.get(request.params.name);
        await deps.scheduler.unload(record.name).catch(() => false);
        await deps.store.remove(record.name);
        return { deleted: record.name };
      },
    );

    app.post<{ Params: Static<typeof NameParams>; Body: Static<typeof CopyBody> }>(
      "/api/models/:name/copy",
      {
        schema: {
          params: NameParams,
          body: CopyBody,
          summary: "Copy (tag) a model under another name",
          tags: ["models"],
        },
        config: { scope: "models:write", audit: "model.copy" },
      },
      async (request) => toModelInfo(await deps.store.copy(request.params.name, request.body.destination)),
    );

    app.post(
      "/api/store/verify",
      {
        schema: {
          summary: "Re-hash every blob; quarantine corrupt ones and report the models they break",
          tags: ["models"],
        },
        config: { scope: "admin", audit: "store.verify" },
        preValidation: noBody,
      },
      async () => deps.store.verify(),
    );

    app.get(
      "/api/store/usage",
      { schema: { summary: "Disk use by model and shared blobs", tags: ["models"] }, config: { scope: "models:read" } },
      async (request) => {
        // A key with an allow-list sees its models (the store's totals are not per model).
        const du = await deps.store.du();
        return { ...du, models: du.models.filter((m) => callerMaySee(request, m.name)) };
      },
    );

    app.post(
      "/api/store/gc",
      {
        schema: { summary: "Remove blobs no model, load or pull uses", tags: ["models"] },
        config: { scope: "admin", audit: "store.gc" },
        preValidation: noBody,
      },
      async () => deps.store.gc(),
    );
  };
}
