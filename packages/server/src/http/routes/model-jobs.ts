import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Type, type Static } from "@sinclair/typebox";
import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import type { ImatrixReport, JobView } from "@llmos/protocol";
import { LlmosError } from "../../errors.js";
import { resolveQuantizeType } from "../../model-jobs/index.js";
import { isDigest, parseModelName, toModelSummary } from "../../store/index.js";
import { callerMaySee } from "../auth/model-visibility.js";
import { noBody } from "../body-guards.js";
import type { HttpDeps } from "../deps.js";
import { clientGone, keyIdOf } from "../request-context.js";
import { ResponseStream } from "../streaming.js";
import { respondWithProgress } from "./models-progress.js";

const ModelName = Type.String({ minLength: 1, maxLength: 300 });
const KvType = Type.Union([Type.Literal("f16"), Type.Literal("q8_0"), Type.Literal("q4_0")]);
const Text = Type.String({ minLength: 1, maxLength: 8 * 1024 * 1024, description: "The text (UTF-8)" });
const Context = Type.Integer({ minimum: 16, maximum: 131072 });

const QuantizeBody = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 300, description: "The model to quantize" }),
    name: Type.String({ minLength: 1, maxLength: 300, description: "Name of the new model" }),
    type: Type.String({ minLength: 1, maxLength: 32, description: "Target type, e.g. Q4_K_M (a 400 lists them)" }),
    imatrix: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 4096,
        description:
          "Importance matrix: sha256:<hex> of an uploaded blob, or an absolute GGUF path inside LLMOS_IMPORT_DIRS " +
          "(else 403 path_not_allowed)",
      }),
    ),
    pure: Type.Optional(Type.Boolean({ description: "No k-quant mixes" })),
    allowRequantize: Type.Optional(Type.Boolean({ description: "Allow quantizing a quantized model" })),
    stream: Type.Optional(Type.Boolean({ description: "NDJSON progress lines (default true)" })),
  },
  { additionalProperties: false },
);
const EvalBody = Type.Object(
  {
    model: ModelName,
    base: Type.Optional(ModelName),
    text: Text,
    contextSize: Type.Optional(Context),
    maxChunks: Type.Optional(Type.Integer({ minimum: 1 })),
    kvCacheType: Type.Optional(KvType),
    baseKvCacheType: Type.Optional(KvType),
  },
  { additionalProperties: false },
);
const ImatrixBody = Type.Object(
  {
    model: ModelName,
    text: Text,
    textName: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    contextSize: Type.Optional(Context),
    maxChunks: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);
const JobParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

/** The models the caller's key may use (its allow-list): other tenants' jobs are not found. */
const mayUse = (request: FastifyRequest) => (model: string) => callerMaySee(request, model);

const finished = (v: JobView) => v.state === "succeeded" || v.state === "failed" || v.state === "cancelled";

/** Quantization (`POST /api/models/quantize`) and the jobs API (eval, imatrix). */
export function modelJobRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    const jobs = deps.modelJobs;
    if (!jobs) return;

    app.post<{ Body: Static<typeof QuantizeBody> }>(
      "/api/models/quantize",
      {
        schema: {
          body: QuantizeBody,
          summary: "Quantize a model into a new model (NDJSON progress)",
          tags: ["models"],
        },
        config: { scope: "models:write", audit: "model.create" },
      },
      async (request, reply) => {
        const { stream, ...spec } = request.body;
        // Bad input is a 400 before any stream starts.
        resolveQuantizeType(spec.type);
        parseModelName(spec.name);
        await deps.store.get(spec.model);
        // A file of the server is read only inside LLMOS_IMPORT_DIRS (clients upload theirs as blobs).
        if (spec.imatrix !== undefined && !isDigest(spec.imatrix))
          spec.imatrix = await deps.importPolicy.resolve(spec.imatrix, "imatrix");
        return respondWithProgress(request, reply, {
          stream: stream ?? true,
          style: "native",
          run: (onProgress, signal) => jobs.quantizer.quantize(spec, onProgress, signal),
          final: (record) => ({ status: "success", model: toModelSummary(record) }),
        });
      },
    );

    app.post<{ Body: Static<typeof EvalBody> }>(
      "/api/jobs/eval",
      {
        schema: {
          body: EvalBody,
          summary: "Start an eval job: perplexity, and KL divergence against a base",
          tags: ["jobs"],
        },
        config: { scope: "models:write" },
      },
      async (request, reply) => reply.code(202).send(await jobs.quality.startEval(request.body, keyIdOf(request))),
    );

    app.post<{ Body: Static<typeof ImatrixBody> }>(
      "/api/jobs/imatrix",
      {
        schema: {
          body: ImatrixBody,
          summary: "Start an imatrix job: a model's importance matrix over a text",
          tags: ["jobs"],
        },
        config: { scope: "models:write" },
      },
      async (request, reply) => reply.code(202).send(await jobs.quality.startImatrix(request.body, keyIdOf(request))),
    );

    app.get(
      "/api/jobs",
      {
        schema: { summary: "List jobs (finished ones are kept an hour)", tags: ["jobs"] },
        config: { scope: "models:read" },
      },
      async (request) => ({ jobs: jobs.registry.list(mayUse(request)) }),
    );

    app.get<{ Params: Static<typeof JobParams> }>(
      "/api/jobs/:id",
      {
        schema: { params: JobParams, summary: "A job's state, progress and result", tags: ["jobs"] },
        config: { scope: "models:read" },
      },
      async (request) => jobs.registry.get(request.params.id, mayUse(request)),
    );

    app.get<{ Params: Static<typeof JobParams> }>(
      "/api/jobs/:id/events",
      {
        schema: {
          params: JobParams,
          summary: "NDJSON: the job's view at each change, until it is finished",
          tags: ["jobs"],
        },
        config: { scope: "models:read" },
      },
      async (request, reply) => {
        const first = jobs.registry.get(request.params.id, mayUse(request));
        const gone = clientGone(request, reply);
        const out = new ResponseStream(reply, "application/x-ndjson");
        await out.ndjson(first);
        if (!finished(first)) {
          await new Promise<void>((resolve) => {
            const stop = jobs.registry.watch(first.id, (view) => {
              void out.ndjson(view);
              if (finished(view)) done();
            });
            const done = () => {
              stop();
              gone.removeEventListener("abort", done);
              resolve();
            };
            gone.addEventListener("abort", done, { once: true });
          });
        }
        out.end();
        return reply;
      },
    );

    app.delete<{ Params: Static<typeof JobParams> }>(
      "/api/jobs/:id",
      {
        schema: { params: JobParams, summary: "Cancel a job (its worker is killed)", tags: ["jobs"] },
        config: { scope: "models:write" },
        preValidation: noBody,
      },
      async (request) => jobs.registry.cancel(request.params.id, mayUse(request)),
    );

    app.get<{ Params: Static<typeof JobParams> }>(
      "/api/jobs/:id/output",
      {
        schema: { params: JobParams, summary: "The file an imatrix job made (GGUF)", tags: ["jobs"] },
        config: { scope: "models:read" },
      },
      async (request, reply) => {
        const view = jobs.registry.get(request.params.id, mayUse(request));
        const digest =
          view.kind === "imatrix" && view.state === "succeeded" ? (view.result as ImatrixReport).digest : null;
        if (!digest)
          throw new LlmosError("not_found", `job ${view.id} has no output (only a finished imatrix job has)`);
        const file = deps.store.blobPath(digest);
        const size = await stat(file).then(
          (s) => s.size,
          () => {
            throw new LlmosError("not_found", `the output of job ${view.id} is no longer stored`);
          },
        );
        return reply
          .header("content-type", "application/octet-stream")
          .header("content-length", String(size))
          .header("content-disposition", `attachment; filename="${view.model.replace(/[^\w.-]+/g, "_")}.imatrix.gguf"`)
          .send(createReadStream(file));
      },
    );
  };
}
