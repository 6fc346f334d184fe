import { Type, type Static } from "@sinclair/typebox";
import type { FastifyPluginAsync } from "fastify";
import { parseDurationMs } from "../../config/load.js";
import { LlmosError } from "../../errors.js";
import { noBody, optionalBody } from "../body-guards.js";
import { callerMaySee } from "../auth/index.js";
import type { HttpDeps } from "../deps.js";
import { ollamaDetails, UNKNOWN_DETAILS } from "../ollama/translate.js";

const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 300 }) });

export const LoadBody = Type.Object(
  {
    keepAlive: Type.Optional(
      Type.Union([Type.Number(), Type.String({ maxLength: 32 })], {
        description: "Seconds, a duration like `5m`, or -1 for forever",
      }),
    ),
    contextSize: Type.Optional(
      Type.Integer({ minimum: 16, maximum: 1 << 20, description: "Context tokens per sequence" }),
    ),
    parallel: Type.Optional(Type.Integer({ minimum: 1, maximum: 64, description: "Parallel sequences (slots)" })),
    pinned: Type.Optional(Type.Boolean({ description: "Never evict under memory pressure" })),
    minThreads: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1024,
        description:
          "The least decode threads the model gets while it is busy, however many other models are (its CPU floor; default 1; never more than LLMOS_THREADS or the managed cores)",
      }),
    ),
  },
  { additionalProperties: false },
);

/** Parses an API keep-alive value: seconds, a duration string, or negative for forever. */
export function keepAliveMs(value: number | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  try {
    return parseDurationMs(value);
  } catch (error) {
    throw new LlmosError("invalid_request", (error as Error).message, { param: "keep_alive" });
  }
}

/** Loading, unloading and observing models in memory; node inventory. */
export function runtimeRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    app.post<{ Params: Static<typeof NameParams>; Body: Static<typeof LoadBody> }>(
      "/api/models/:name/load",
      {
        schema: { params: NameParams, body: LoadBody, summary: "Load a model into memory", tags: ["runtime"] },
        config: { scope: "models:write", audit: "model.load" },
        preValidation: optionalBody,
      },
      async (request) => {
        const body = request.body ?? {};
        await deps.ensureModel?.(request.params.name);
        await deps.store.get(request.params.name);
        const ka = keepAliveMs(body.keepAlive);
        return deps.scheduler.load(request.params.name, {
          ...(ka !== undefined ? { keepAliveMs: ka } : {}),
          ...(body.pinned !== undefined ? { pinned: body.pinned } : {}),
          ...(body.contextSize !== undefined ? { contextSize: body.contextSize } : {}),
          ...(body.parallel !== undefined ? { parallel: body.parallel } : {}),
          ...(body.minThreads !== undefined ? { minThreads: body.minThreads } : {}),
        });
      },
    );

    app.post<{ Params: Static<typeof NameParams> }>(
      "/api/models/:name/unload",
      {
        schema: {
          params: NameParams,
          summary: "Unload a model (after its in-flight requests finish)",
          tags: ["runtime"],
        },
        config: { scope: "models:write", audit: "model.unload" },
        preValidation: noBody,
      },
      async (request) => {
        const record = await deps.store.get(request.params.name);
        const unloaded = await deps.scheduler.unload(record.name);
        return { unloaded: record.name, wasLoaded: unloaded };
      },
    );

    app.get(
      "/api/ps",
      {
        schema: {
          summary:
            "Loaded models: slots, queue, memory (estimate, limit, peak), sandbox, CPU allotment (threads, CPUs, contended decode steps), engine counters, recent OOM kills (also Ollama's ps fields)",
          tags: ["runtime", "ollama"],
        },
        config: { scope: "models:read" },
      },
      async (request) => {
        const ps = await deps.scheduler.ps();
        ps.models = ps.models.filter((m) => callerMaySee(request, m.name));
        // Ollama clients read `details` in Ollama's shape; llmos' native fields stay beside Ollama's.
        const models = await Promise.all(
          ps.models.map(async (m) => ({
            ...m,
            details: await deps.store.get(m.name).then(ollamaDetails, () => UNKNOWN_DETAILS),
          })),
        );
        const build = deps.cpuBackendBuild?.();
        return {
          ...ps,
          models,
          memory: { budgetBytes: deps.scheduler.budgetBytes, reservedBytes: deps.scheduler.reservedBytes() },
          ...(build && build.state !== "off" ? { cpuBackendBuild: build } : {}),
        };
      },
    );

    app.get(
      "/api/system",
      {
        schema: {
          summary: "Node inventory: CPU, RAM, GPUs, memory budget, runner sandbox support (namespaces, cgroups)",
          tags: ["runtime"],
        },
        config: { scope: "admin" },
      },
      async () => {
        const inventory = await deps.inventory();
        return {
          ...inventory,
          version: deps.version,
          engine: deps.config.engine,
          threads: deps.config.threads,
          cpus: deps.config.cpus,
          cpuAffinity: deps.config.cpuAffinity,
          memoryBudget: { budgetBytes: deps.scheduler.budgetBytes, reservedBytes: deps.scheduler.reservedBytes() },
        };
      },
    );
  };
}
