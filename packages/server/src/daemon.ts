/**
 * The composition root: builds every service once, wires them, serves HTTP. Nothing else constructs services.
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { mkdir } from "node:fs/promises";
import type { FastifyInstance } from "fastify";
import { cpuBackendDir, defaultConfig, homePaths, type LlmosConfig } from "./config/config.js";
import { formatCpuList } from "./config/cpu-set.js";
import { CPU_BACKEND_MANIFEST, readCpuBackendManifest } from "./engine/llama-ffi/cpu-backend.js";
import { buildCpuBackend, inspectBuiltCpuBackend, missingBuildTool } from "./engine/llama-ffi/cpu-backend-build.js";
import { HomeLock } from "./home-lock.js";
import { buildApp } from "./http/app.js";
import { authPlugin } from "./http/auth/index.js";
import { Drain } from "./http/drain.js";
import type { HttpDeps } from "./http/deps.js";
import { modelRoutes } from "./http/routes/models.js";
import { modelJobRoutes } from "./http/routes/model-jobs.js";
import { JobRegistry, ModelQuantizer, QualityJobs } from "./model-jobs/index.js";
import { ToolWorkers } from "./runtime/tool-worker.js";
import { responsesRoutes } from "./http/routes/responses.js";
import { securityRoutes } from "./http/routes/security.js";
import { uiRoutes } from "./http/routes/ui.js";
import { tracingHooks } from "./http/tracing-hooks.js";
import { InferenceService } from "./inference/inference-service.js";
import { JinjaSandbox } from "./inference/jinja-sandbox.js";
import { CpuBackendAutoBuild, type CpuBackendBuilder } from "./runtime/cpu-backend-autobuild.js";
import { probeGpus } from "./runtime/gpu-probe.js";
import { readInventory, type NodeInventory } from "./runtime/inventory.js";
import { CleanupStack } from "./lib/cleanup-stack.js";
import { AffinityCpuPlacement, noCpuPlacement } from "./runtime/cpu-placement.js";
import { ChildProcessRunnerFactory, RUNNER_ENTRY } from "./runtime/child-process-runner-factory.js";
import type { RunnerFactory } from "./runtime/runner-handle.js";
import { RunnerLauncher } from "./runtime/sandbox/runner-launcher.js";
import { probeSandbox } from "./runtime/sandbox/sandbox-probe.js";
import { ClusterNode, openClusterSecurity } from "./cluster/cluster-node.js";
import { clusterRoutes } from "./http/routes/cluster.js";
import { clusterPeerRoutes } from "./http/routes/cluster-peer.js";
import { clusterForwarding } from "./http/cluster-forwarding.js";
import { checkPeerBody, isPeerCall, verifyPeerCall } from "./cluster/peer-auth.js";
import { Scheduler } from "./scheduler/scheduler.js";
import { assertSafeBind, ImportPolicy, SecurityService } from "./security/index.js";
import { openKeepPolicy } from "./keep-policy-setup.js";
import { StoreModelSource } from "./store-model-source.js";
import { ModelStore, PullUrlPolicy } from "./store/index.js";
import { LiveStats } from "./telemetry/live-stats.js";
import { createLogger, type Logger } from "./telemetry/logger.js";
import { Metrics } from "./telemetry/metrics.js";
import { Tracing } from "./telemetry/tracing.js";

/** The server package's version (from the nearest package.json above this file, in src/ or dist/src/). */
export const VERSION: string = (() => {
  for (const rel of ["../package.json", "../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "@llmos/server" && pkg.version) return pkg.version;
    } catch {
      /* try the next */
    }
  }
  return "0.0.0";
})();

/** A running daemon. */
export interface Daemon {
  /** Base URL clients use, e.g. `http://127.0.0.1:11435`. */
  readonly url: string;
  readonly config: LlmosConfig;
  readonly app: FastifyInstance;
  readonly scheduler: Scheduler;
  readonly store: ModelStore;
  readonly security: SecurityService;
  readonly logger: Logger;
  /**
   * Stops: new requests get 503 `shutting_down`, requests in flight may finish for `drainTimeoutMs` (then they are
   * cancelled with a final error), runners stop, the database closes, the home lock is released. Idempotent.
   */
  close(): Promise<void>;
}

export interface DaemonOptions {
  /** Log destination (default stdout). */
  logDestination?: NodeJS.WritableStream;
  /** Runner factory (tests of scheduling decisions may pass another real implementation). */
  runners?: RunnerFactory;
  /** Called with the HTTP app before any route is registered (e.g. to capture the route list). */
  instrumentApp?: (app: FastifyInstance) => void;
  /** Folder of the built dashboard (default: `@llmos/ui`'s dist folder; null: no dashboard). */
  uiDir?: string | null;
  /**
   * Tests only: another runner entry file (a test runner that attacks its sandbox). Not reachable from the
   * environment, the CLI or the API: only code that calls `startDaemon` in-process can set it.
   */
  runnerEntry?: string;
  /** Tests only, as `runnerEntry`: another model-tool worker entry file (one that attacks its sandbox). */
  toolWorkerEntry?: string;
  /**
   * What builds the CPU backend in the background (LLMOS_CPU_BACKEND_BUILD=auto). Default: the real build into
   * `<home>/engine/ggml-cpu` at the lowest priority. Tests of the daemon's handling pass another.
   */
  cpuBackendBuilder?: CpuBackendBuilder;
}

/** Settings for {@link startDaemon}: any subset, limits included; the rest take defaults. */
export type DaemonConfigInput = Partial<Omit<LlmosConfig, "limits">> & { limits?: Partial<LlmosConfig["limits"]> };

/**
 * Starts llmos with `config` (missing fields take defaults). When a step fails (the port is taken, the database
 * cannot be opened, ...), what was opened before it is closed again, in reverse order, before the error is thrown.
 */
export async function startDaemon(partial: DaemonConfigInput = {}, options: DaemonOptions = {}): Promise<Daemon> {
  const base = defaultConfig();
  const config: LlmosConfig = { ...base, ...partial, limits: { ...base.limits, ...partial.limits } };
  const metrics = new Metrics();
  // In a cluster every series says which node it comes from (one Prometheus job scrapes them all).
  if (config.cluster) metrics.registry.setDefaultLabels({ node: config.cluster.nodeName });
  const logger = createLogger(config.logLevel, options.logDestination, metrics.events);
  const opened = new CleanupStack();
  try {
    return await assemble(config, options, logger, metrics, opened);
  } catch (error) {
    await opened.unwind((what, err) => logger.error({ err, what }, "closing after a failed start failed"));
    throw error;
  }
}

/** Builds and starts every service; registers each one's closing in `opened` as soon as it is open. */
async function assemble(
  config: LlmosConfig,
  options: DaemonOptions,
  logger: Logger,
  metrics: Metrics,
  opened: CleanupStack,
): Promise<Daemon> {
  const paths = homePaths(config.home);
  await mkdir(config.home, { recursive: true, mode: 0o700 });
  // One daemon per home, decided before anything under it is written (admin token, tmp/ cleanup, database).
  const lock = HomeLock.acquire(paths.lock);
  opened.defer("home lock", () => lock.release());
  const tracing = config.otlpEndpoint
    ? new Tracing({
        endpoint: config.otlpEndpoint,
        serviceVersion: VERSION,
        captureContent: config.otlpCaptureContent,
      })
    : undefined;
  if (tracing) opened.defer("tracing", () => tracing.shutdown());
  metrics.requests.useTracing(tracing);
  const live = new LiveStats(metrics, config.eventsIntervalMs);
  // One URL policy for every pull source (Hub, URLs, registries).
  const pullPolicy = new PullUrlPolicy({ allowHttp: config.pullAllowHttp });
  const store = await ModelStore.open({
    root: paths.models,
    logger: logger.child({ component: "store" }),
    ggufLimits: { maxHeaderBytes: config.limits.ggufHeaderBytes },
    maxBlobBytes: config.limits.blobBytes,
    pull: {
      endpoint: config.hfEndpoint,
      ...(config.hfToken ? { token: config.hfToken } : {}),
      policy: pullPolicy,
      oci: {
        defaultRegistry: config.ociRegistry,
        credentials: { byHost: config.ociAuth, dockerConfigPath: config.dockerConfigPath },
        policy: pullPolicy.check,
      },
    },
  });
  opened.defer("store", () => store.dispose());
  // In a cluster, keys, usage, audit and rate limits live in PostgreSQL, shared by every node.
  const clusterStorage = config.cluster
    ? await openClusterSecurity(config.cluster, logger.child({ component: "cluster" }))
    : undefined;
  const security = await SecurityService.open({
    databasePath: paths.database,
    home: config.home,
    timeScale: config.rateLimitTimeScale,
    responsesTtlMs: config.responsesTtlMs,
    logger: logger.child({ component: "security" }),
    ...(clusterStorage ? { repository: clusterStorage.repository, rateLimitStore: clusterStorage.rateLimitStore } : {}),
  });
  opened.defer("security", () => security.close());
  assertSafeBind(
    { host: config.host, insecureNoAuth: config.insecureNoAuth },
    await security.checkAuthEnabled(),
    logger,
  );

  // What this machine can do to isolate runners, tried once; runners start after it has answered.
  const launcher = new RunnerLauncher({
    mode: config.sandbox,
    memoryMargin: config.memoryMargin,
    home: config.home,
    probe: probeSandbox({
      mode: config.sandbox,
      user: config.sandboxUser,
      path: config.environment.PATH ?? "",
    }),
    entry: options.runnerEntry ?? RUNNER_ENTRY,
    execArgv: process.execArgv,
    env: config.environment,
    logger: logger.child({ component: "sandbox" }),
  });
  // GPUs from node-llama-cpp's detection, in a child process; until it answers, runners use "auto" offload.
  const gpus = probeGpus(config.gpu);
  let vramBudget: number | undefined;
  void gpus.then((g) => {
    const free = g.devices.reduce((n, d) => n + d.freeVramBytes, 0);
    if (free > 0) vramBudget = Math.max(0, free - 512 * 1024 * 1024);
  });
  // The usage model's records live in the same database (in a cluster: the cluster's, one record per model shared
  // by the nodes); written and closed after the scheduler has stopped.
  const keep = await openKeepPolicy(config, logger.child({ component: "scheduler" }), clusterStorage?.pool);
  opened.defer("usage model", () => keep.close());
  const scheduler = new Scheduler(
    new StoreModelSource(store),
    options.runners ??
      new ChildProcessRunnerFactory(logger.child({ component: "runtime" }), {
        stallTimeoutMs: config.runnerStallTimeoutMs,
        launcher,
      }),
    {
      engine: config.engine,
      gpu: config.gpu === "auto",
      threads: config.threads,
      cpus: config.cpus,
      contextSize: config.contextSize,
      parallel: config.parallel,
      kvCacheType: config.kvCacheType,
      streamIntervalMs: config.streamIntervalMs,
      cpuBackendDir: () => builtHereCpuBackend(config),
      keepAliveMs: config.keepAliveMs,
      maxQueuePerModel: config.maxQueuePerModel,
      maxQueueTotal: config.maxQueueTotal,
      queueTimeoutMs: config.queueTimeoutMs,
      memoryBudgetBytes: config.memoryBudgetBytes,
      vramBudgetBytes: () => vramBudget,
      prestart: config.prestart,
    },
    logger.child({ component: "scheduler" }),
    metrics,
    {
      placement: config.cpuAffinity ? AffinityCpuPlacement.create(config.cpus) : noCpuPlacement,
      policy: keep.policy,
      usage: keep.usage,
      policyNote: keep.note,
    },
  );
  opened.defer("scheduler", () => scheduler.shutdown(0));
  metrics.runnerSteps = () => scheduler.runnerSteps();
  scheduler.subscribe((e) => {
    if (e.type === "model.crashed" && e.cause === "oom")
      security.audit.record({
        action: "runner.oom",
        result: "error",
        target: e.model,
        details: {
          memoryLimitBytes: e.memoryLimitBytes,
          peakMemoryBytes: e.peakMemoryBytes,
          nextEstimateBytes: e.nextEstimateBytes,
        },
        time: e.at,
      });
  });
  // Chat templates come from model files: they run in a sandboxed worker thread.
  const templates = new JinjaSandbox();
  opened.defer("templates", () => templates.dispose());
  const inference = new InferenceService(
    store,
    scheduler,
    metrics,
    { maxTokens: config.limits.maxTokens, templates, promptCache: config.promptCache },
    (u) => security.recordUsage(u.keyId, u.model, u.promptTokens, u.completionTokens),
  );
  const toolWorkers = new ToolWorkers(logger.child({ component: "tools" }), {
    launcher,
    ...(options.toolWorkerEntry ? { entry: options.toolWorkerEntry } : {}),
  });
  const jobRegistry = new JobRegistry();
  // Before the scheduler's and the store's cleanup: a running eval or imatrix job's worker reads the store's files.
  opened.defer("model jobs", () => jobRegistry.close());
  const modelJobs = {
    quantizer: new ModelQuantizer(store, toolWorkers, config.threads, scheduler),
    quality: new QualityJobs(store, toolWorkers, jobRegistry, config.threads, scheduler),
    registry: jobRegistry,
  };
  const drain = new Drain();
  const cpuBuild = new CpuBackendAutoBuild({
    builder: options.cpuBackendBuilder ?? REAL_CPU_BACKEND_BUILDER,
    dir: paths.cpuBackend,
    setting: config.cpuBackendBuild,
    notApplicable: autoBuildNotApplicable(config),
    logger: logger.child({ component: "cpu-backend" }),
  });
  // A build started below stops (its tools killed) if a later start-up step fails.
  opened.defer("cpu backend build", () => cpuBuild.stop());
  let ready = false;
  let cluster: ClusterNode | undefined;

  const deps: HttpDeps = {
    config,
    logger,
    metrics,
    live,
    store,
    scheduler,
    inference,
    drain,
    version: VERSION,
    inventory: async () => ({
      ...readInventory(await gpus),
      cpuBackend: { ...cpuBackendSummary(config), build: cpuBuild.status() },
      sandbox: await launcher.support(),
    }),
    cpuBackendBuild: () => cpuBuild.status(),
    importPolicy: new ImportPolicy(config.importDirs),
    preRoutes: [
      ...(tracing ? [tracingHooks(tracing)] : []),
      authPlugin(security, {
        maxKeepAliveMs: config.maxKeepAliveMs,
        ...(config.cluster ? { peer: peerCheck(config.cluster.secret) } : {}),
      }),
      ...(config.cluster ? [clusterForwarding(() => cluster)] : []),
    ],
    admitReload: async (request) => {
      const key = request.llmosAuth?.key;
      if (key && key.rpm !== null) await security.admit(key, 0);
    },
    ready: () => ready,
    ensureModel: async (name) => cluster?.ensureStored(name),
    modelJobs,
    ...(config.tls ? { https: { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) } } : {}),
  };
  const ui = options.uiDir === undefined ? builtDashboard() : options.uiDir;
  const app = await buildApp(
    deps,
    [
      modelRoutes(deps),
      modelJobRoutes(deps),
      securityRoutes(security),
      responsesRoutes(deps, security.responses),
      uiRoutes(ui, { authRequired: async (local) => !local || (await security.checkAuthEnabled()) }),
      ...(config.cluster
        ? [
            clusterRoutes(() => cluster),
            clusterPeerRoutes({
              store,
              bytesPerSecond: config.cluster.transferBytesPerSecond,
              logger: logger.child({ component: "cluster" }),
            }),
          ]
        : []),
    ],
    options.instrumentApp,
  );
  opened.defer("http", () => app.close());
  live.start();
  opened.defer("live stats", () => live.stop());
  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  const url = `${config.tls ? "https" : "http"}://${host === "0.0.0.0" ? "127.0.0.1" : host}:${port}`;
  lock.describe({ url });
  if (config.cluster && clusterStorage) {
    const node = new ClusterNode({
      config: config.cluster,
      url,
      version: VERSION,
      threads: config.threads,
      defaultSlots: config.parallel,
      storage: clusterStorage,
      scheduler,
      store,
      forgetKey: (id) => security.limiter.forget(id),
      onTransferBytes: (peer, bytes) => metrics.clusterBlobTransferBytes.inc({ peer }, bytes),
      logger: logger.child({ component: "cluster" }),
    });
    await node.start();
    cluster = node;
    opened.defer("cluster membership", () => node.stop());
  }
  const builtCpu = builtHereCpuBackend(config);
  logger.info(
    {
      url,
      home: config.home,
      engine: config.engine,
      cpus: formatCpuList(config.cpus),
      threads: config.threads,
      cpuBackend: builtCpu ?? "shipped",
    },
    "llmos listening",
  );
  // In the background: requests are served meanwhile, and runners started after it is installed use it.
  void cpuBuild.start();

  for (const name of config.preload) {
    try {
      await scheduler.load(name, { pinned: true, keepAliveMs: -1 });
      logger.info({ model: name }, "preloaded and pinned");
    } catch (error) {
      logger.error({ err: error, model: name }, "preload failed");
    }
  }
  ready = true;

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      ready = false;
      // Leave the cluster first, so that peers stop sending work here while it drains.
      await cluster?.stop();
      // New requests get 503 from here on; those in flight (streams too) may finish until the drain timeout.
      const drained = await drain.drain(config.drainTimeoutMs);
      if (!drained.finished) logger.warn({ cancelled: drained.cancelled }, "drain timed out; requests cancelled");
      live.stop();
      await cpuBuild.stop();
      await app.close();
      await jobRegistry.close();
      await scheduler.shutdown();
      await templates.dispose();
      await keep.close();
      await tracing?.shutdown();
      await security.close();
      await store.dispose();
      lock.release();
      logger.info("llmos stopped");
    })());

  return { url, config, app, scheduler, store, security, logger, close };
}

/** Cluster mode: verifies node-to-node calls (undefined: the request does not claim to be one). */
function peerCheck(secret: string) {
  return (request: { headers: Record<string, string | string[] | undefined>; method: string; url: string }) => {
    if (!isPeerCall(request.headers)) return undefined;
    const peer = verifyPeerCall(secret, request.headers, { method: request.method, path: request.url });
    return { keyId: peer.keyId, checkBody: (body: unknown) => checkPeerBody(peer, body) };
  };
}

/**
 * The built-here CPU backend folder a new runner gets: the configured folder, or with `auto` the one under the
 * home folder when `llmos build-cpu-backend` has filled it (checked at each runner start, so a build is picked up
 * without a restart). The runner checks that it matches its libraries and says so when it falls back.
 */
function builtHereCpuBackend(config: LlmosConfig): string | null {
  const dir = cpuBackendDir(config);
  if (!dir) return null;
  if (config.cpuBackend === "auto" && !existsSync(join(dir, CPU_BACKEND_MANIFEST))) return null;
  return dir;
}

/** Why this daemon has no business building a CPU backend, or null when it may (see CpuBackendAutoBuild). */
function autoBuildNotApplicable(config: LlmosConfig): string | null {
  if (config.engine !== "llama-ffi") return "the llama-node engine uses node-llama-cpp's own backend";
  if (config.cpuBackend !== "auto") return `LLMOS_CPU_BACKEND is ${config.cpuBackend}`;
  if (process.platform !== "linux") return "building the CPU backend is supported on Linux only";
  return null;
}

/** The real build: `llmos build-cpu-backend`'s, at the lowest priority. */
const REAL_CPU_BACKEND_BUILDER: CpuBackendBuilder = {
  inspect: inspectBuiltCpuBackend,
  missingTool: missingBuildTool,
  build: async ({ dir, onProgress, signal }) => {
    const result = await buildCpuBackend({ outDir: dir, nice: 19, signal, onProgress });
    return { seconds: result.seconds };
  },
};

/** For `GET /api/system`: the CPU backend setting, and the backend built here that new runners would try. */
function cpuBackendSummary(config: LlmosConfig): NonNullable<NodeInventory["cpuBackend"]> {
  const dir = builtHereCpuBackend(config);
  const m = dir ? readCpuBackendManifest(dir) : null;
  return {
    setting: config.cpuBackend,
    builtHere:
      dir && m ? { dir, release: m.release, variant: m.variant, compiler: m.compiler, builtAt: m.builtAt } : null,
  };
}

/** The dashboard's built files (`npm run build` makes them), or null when the UI package is not installed. */
function builtDashboard(): string | null {
  try {
    return join(dirname(createRequire(import.meta.url).resolve("@llmos/ui/package.json")), "dist");
  } catch {
    return null;
  }
}
