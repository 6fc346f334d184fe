import "@fastify/swagger";
import type { FastifyPluginAsync } from "fastify";
import type { LlmosConfig } from "../config/config.js";
import type { InferenceService } from "../inference/inference-service.js";
import type { ImportPolicy } from "../security/index.js";
import type { Scheduler } from "../scheduler/scheduler.js";
import type { ModelStore } from "../store/index.js";
import type { Logger } from "../telemetry/logger.js";
import type { LiveStats } from "../telemetry/live-stats.js";
import type { Metrics } from "../telemetry/metrics.js";
import type { NodeInventory } from "../runtime/inventory.js";
import type { JobRegistry, ModelQuantizer, QualityJobs } from "../model-jobs/index.js";
import type { CpuBackendBuildStatus } from "@llmos/protocol";

/** Everything route modules may use; built once by the composition root. */
export interface HttpDeps {
  config: LlmosConfig;
  logger: Logger;
  metrics: Metrics;
  /** The live charts' points (computed from `metrics`), for `/api/events`. */
  live: LiveStats;
  store: ModelStore;
  scheduler: Scheduler;
  inference: InferenceService;
  inventory: () => Promise<NodeInventory>;
  /** Which server files clients may import by path (LLMOS_IMPORT_DIRS). */
  importPolicy: ImportPolicy;
  /**
   * Called before a request's `num_ctx` reloads a model: counts the reload against the caller's rate limit
   * (throws `rate_limited` when its key has no request left).
   */
  admitReload?: (request: import("fastify").FastifyRequest) => Promise<void>;
  /**
   * Cluster mode: copies a model this node does not store from a peer that stores it (waits for the copy); a no-op
   * when the model is here or on no peer. Explicit loads call it; inference requests do in the forwarding hook.
   */
  ensureModel?: (name: string) => Promise<void>;
  /** The background CPU-backend build (shown by `/api/ps`); absent when the daemon has none to report. */
  cpuBackendBuild?: () => CpuBackendBuildStatus;
  version: string;
  /** Plugins registered before any route (auth hooks). */
  preRoutes?: FastifyPluginAsync[];
  /** TLS material when serving https. */
  https?: { cert: Buffer; key: Buffer };
  /** Graceful shutdown: refuses new requests while draining and cancels the rest at its deadline. */
  drain?: import("./drain.js").Drain;
  /** True once the daemon finished start-up (preloads done). */
  ready: () => boolean;
  /** Quantization and the jobs API (eval, imatrix); their routes are absent without it. */
  modelJobs?: { quantizer: ModelQuantizer; quality: QualityJobs; registry: JobRegistry };
}
