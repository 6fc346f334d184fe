import { Type, type Static } from "@sinclair/typebox";
import type { FastifyPluginAsync } from "fastify";
import { toModelInfo, toModelSummary } from "../../store/index.js";
import type { HttpDeps } from "../deps.js";

const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 300 }) });
const ImportBody = Type.Object(
  {
    path: Type.String({ minLength: 1, maxLength: 4096, description: "Absolute path of a GGUF file readable by the daemon" }),
    name: Type.String({ minLength: 1, maxLength: 300, description: "Target name, name[:tag]" }),
  },
  { additionalProperties: false },
);
const CopyBody = Type.Object({ destination: Type.String({ minLength: 1, maxLength: 300 }) }, { additionalProperties: false });

/** Native model management: import, list, show, copy, delete. */
export function modelRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    app.post<{ Body: Static<typeof ImportBody> }>(
      "/api/models/import",
      { schema: { body: ImportBody, summary: "Import a local GGUF file under a name", tags: ["models"] }, config: { scope: "models:write", audit: "model.import" } },
      async (request) => {
        const record = await deps.store.importFile(request.body.path, request.body.name);
        return toModelInfo(record);
      },
    );

    app.get("/api/models", { schema: { summary: "List models", tags: ["models"] }, config: { scope: "models:read" } }, async () => ({
      models: (await deps.store.list()).map(toModelSummary),
    }));

    app.get<{ Params: Static<typeof NameParams> }>(
      "/api/models/:name",
      { schema: { params: NameParams, summary: "Show a model: details, parameters, template, metadata", tags: ["models"] }, config: { scope: "models:read" } },
      async (request) => {
        const record = await deps.store.get(request.params.name);
        return toModelInfo(record, { metadata: await deps.store.metadata(record.name) });
      },
    );

    app.delete<{ Params: Static<typeof NameParams> }>(
      "/api/models/:name",
      { schema: { params: NameParams, summary: "Delete a model (blobs go when nothing references them)", tags: ["models"] }, config: { scope: "models:write", audit: "model.delete" } },
      async (request) => {
        const record = await deps.store.get(request.params.name);
        await deps.scheduler.unload(record.name).catch(() => false);
        await deps.store.remove(record.name);
        return { deleted: record.name };
      },
    );

    app.post<{ Params: Static<typeof NameParams>; Body: Static<typeof CopyBody> }>(
      "/api/models/:name/copy",
      { schema: { params: NameParams, body: CopyBody, summary: "Copy (tag) a model under another name", tags: ["models"] }, config: { scope: "models:write", audit: "model.copy" } },
      async (request) => toModelInfo(await deps.store.copy(request.params.name, request.body.destination)),
    );
  };
}
