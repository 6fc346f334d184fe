import os from "node:os";
import path from "node:path";
import { allowedCpus } from "./cpu-set.js";
import type { KeepPolicyName } from "@llmos/protocol";

/** Every setting of the daemon. Read once from the environment and flags (see `loadConfig`), then passed in. */
export interface LlmosConfig {
  /** State folder (models, database, tokens). Env LLMOS_HOME; default ~/.llmos. */
  home: string;
  /** Address to listen on. Default 127.0.0.1. */
  host: string;
  /** Port. Default 11435. */
  port: number;
  /** Log level (pino). Env LLMOS_LOG_LEVEL; default info. */
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /**
   * CPUs shared among busy runners: together they never get more threads than these (see docs/architecture.md,
   * CPU). Env LLMOS_CPUS: a count (the first N CPUs this process may use) or a list like `0-3,8`; default: every
   * CPU the process may use.
   */
  cpus: number[];
  /** Most decode threads one runner gets (when it is the only busy one). Env LLMOS_THREADS; default: all of `cpus`. */
  threads: number;
  /**
   * Pin each busy runner to its CPU set (`taskset`, Linux) as well as giving it its thread count. Env
   * LLMOS_CPU_AFFINITY (on|off); default off.
   */
  cpuAffinity: boolean;
  /** Engine for runners: `llama-ffi` (default) or `llama-node`. Env LLMOS_ENGINE. */
  engine: "llama-ffi" | "llama-node";
  /**
   * CPU backend of the llama-ffi engine. `auto` (default): the one built on this machine by
   * `llmos build-cpu-backend` (in `<home>/engine/ggml-cpu`) when it is there and matches the loaded libraries, else
   * the variant node-llama-cpp ships; `shipped`: always the shipped one; any other value: a folder holding a
   * built-here backend. Env LLMOS_CPU_BACKEND.
   */
  cpuBackend: "auto" | "shipped" | (string & {});
  /**
   * With `cpuBackend: "auto"` on Linux and the llama-ffi engine: `auto` (default) builds the CPU backend in the
   * background at start-up when none matching is installed and git, cmake and a C++ compiler are there (low
   * priority, one build at a time; a failed build is not retried until `llmos build-cpu-backend` is run); `off`
   * only hints at the command. Env LLMOS_CPU_BACKEND_BUILD.
   */
  cpuBackendBuild: "auto" | "off";
  /**
   * Keep one runner started ahead of the next load (its process and engine up, no model) while the memory budget
   * has room for it, so a cold load only loads the weights. Env LLMOS_PRESTART (on|off); default on.
   */
  prestart: boolean;
  /**
   * Runners keep each slot's KV cells after a request and reuse the longest common prefix with the next prompt
   * (the prompt cache). Env LLMOS_PROMPT_CACHE (on|off); default on. Requests opt out with `cache_prompt: false`.
   */
  promptCache: boolean;
  /** Use a GPU when node-llama-cpp detects one. Env LLMOS_GPU (auto|off). */
  gpu: "auto" | "off";
  /** Default context size per sequence (tokens). Default 2048 (capped at the model's training context). */
  contextSize: number;
  /** Default parallel sequences per model. Default 4. */
  parallel: number;
  /**
   * Element types of the K and V caches of loaded models (Ollama's OLLAMA_KV_CACHE_TYPE): f16 (default), q8_0
   * (about half the memory) or q4_0 (about a quarter). Env LLMOS_KV_CACHE_TYPE (both), LLMOS_KV_CACHE_TYPE_K,
   * LLMOS_KV_CACHE_TYPE_V; a model's PARAMETER kv_cache_type (kv_cache_type_k, kv_cache_type_v) wins.
   */
  kvCacheType: { k: KvCacheTypeName; v: KvCacheTypeName };
  /**
   * Minimum ms between two streamed chunks of one generation. Tokens that come faster are merged into one chunk
   * (the first token is never held), which keeps messaging from taking CPU from decoding on small, fast models.
   * 0 = one chunk per token. Env LLMOS_STREAM_INTERVAL_MS; default 20.
   */
  streamIntervalMs: number;
  /**
   * How long a runner with work may make no progress (no token, embedding, load or decode step) before it is killed
   * with its process group and its requests fail with `runner_stalled` (502); the model loads again on the next
   * request. Must stay above the slowest single step (a 512-token prompt chunk of the largest model, a model load).
   * 0 = never. Env LLMOS_RUNNER_STALL_TIMEOUT; default 60 s.
   */
  runnerStallTimeoutMs: number;
  /** Default keep-alive after the last request, ms. -1 = forever. Default 5 minutes. */
  keepAliveMs: number;
  /**
   * Keep-alive and eviction policy (Env LLMOS_KEEP_POLICY): `fixed` (keepAliveMs after the last request, least
   * recently used evicted first), `lru` / `gdsf` (idle models stay until memory is needed; LRU or
   * Greedy-Dual-Size-Frequency eviction), `histogram` (learned per model from its idle-time histogram, with
   * prewarming; fixed until a model has history). Default histogram. A request's keep_alive and pins always win.
   */
  keepPolicy: KeepPolicyName;
  /**
   * Length of the day the usage model's time-of-day rates follow, ms (default 24 h). Benchmarks compress it with
   * their traces. (Its samples decay with a half-life of 7 real days either way.)
   */
  usageDayMs: number;
  /** Max queued requests per model before 503. Default 64. */
  maxQueuePerModel: number;
  /** Max queued requests in total before 503. Default 512. */
  maxQueueTotal: number;
  /** Max time a request waits in the queue before `queue_timeout`. Default 10 minutes. */
  queueTimeoutMs: number;
  /** Memory budget for loaded models, bytes. Default: total RAM minus 2 GiB headroom (min 1 GiB). Env LLMOS_MEMORY_BUDGET. */
  memoryBudgetBytes: number;
  /**
   * Runner isolation. `auto` (default): on Linux each runner starts in its own namespaces through bubblewrap (no
   * network, read-only root, only its model's files visible from the home folder, private /tmp and PIDs, an
   * unprivileged user when the daemon is root) inside a cgroup with memory, pids and CPU limits; whatever the
   * machine cannot do is left out with one warning. `required`: a model whose runner cannot be fully isolated is
   * not loaded (`sandbox_unavailable`). `off`: plain child processes without limits. Env LLMOS_SANDBOX.
   */
  sandbox: "auto" | "off" | "required";
  /**
   * The user sandboxed runners run as when the daemon runs as root: a name or `uid[:gid]`. Env LLMOS_SANDBOX_USER;
   * default `nobody`.
   */
  sandboxUser: string;
  /**
   * A runner's memory limit over the scheduler's estimate for its model, as a fraction (0.15 = 15%). Env
   * LLMOS_MEMORY_MARGIN (`15%` or `0.15`); default 15%.
   */
  memoryMargin: number;
  /** Models to load (and pin) at start-up. */
  preload: string[];
  /** How long `/v1/responses` keeps a stored response (`store: true`), ms. Env LLMOS_RESPONSES_TTL; default 30 days. */
  responsesTtlMs: number;
  /** Request limits. */
  limits: {
    bodyBytes: number;
    maxTokens: number;
    messages: number;
    stopSequences: number;
    tools: number;
    schemaBytes: number;
    schemaDepth: number;
    /** Deepest nesting of any JSON request body (objects and arrays); deeper bodies get a 400 before anything walks them. */
    jsonDepth: number;
    /**
     * Largest GGUF header (magic through tensor infos) the daemon reads; a file whose header reaches past it is
     * refused before its values are parsed. Env LLMOS_MAX_GGUF_HEADER; default 64 MiB (real models use < 16 MiB).
     */
    ggufHeaderBytes: number;
    /**
     * Most bytes a blob upload or a download may write when no size is announced (and the most an announced
     * upload may have): the write stops there and its partial file is deleted. Also capped by free disk space.
     * Env LLMOS_MAX_BLOB_SIZE; default 256 GiB.
     */
    blobBytes: number;
  };
  /** Hugging Face Hub base URL. Env LLMOS_HF_ENDPOINT; default https://huggingface.co. */
  hfEndpoint: string;
  /** Hugging Face token for gated repos. Env HF_TOKEN. */
  hfToken: string | undefined;
  /**
   * Registry that names without a host pull from (`llama3.2:1b`): `host[:port]` (https) or an `https://` /
   * `http://` URL (http is still subject to the pull URL policy). Env LLMOS_OCI_REGISTRY; default
   * `registry.ollama.ai`.
   */
  ociRegistry: string;
  /**
   * Registry credentials by host. Env LLMOS_OCI_AUTH: entries separated by white space,
   * `host[:port]=user:password` (Basic, and for the registry's token endpoint) or `host[:port]=token` (a bearer token).
   */
  ociAuth: Record<string, { username?: string; password?: string; token?: string }>;
  /** Docker's client config, whose `auths` entries are used as registry credentials. Env DOCKER_CONFIG (a folder). */
  dockerConfigPath: string;
  /** Allow a non-loopback bind without auth (logs a loud warning). */
  insecureNoAuth: boolean;
  /** TLS certificate and key files. */
  tls: { cert: string; key: string } | undefined;
  /**
   * Browser origins allowed to call the API besides the daemon's own (same syntax as OLLAMA_ORIGINS: full origins,
   * `*` wildcards, `*` alone for any). A request carrying another `Origin` is refused (`origin_not_allowed`); CORS
   * headers are sent to these origins only. Env LLMOS_ORIGINS (comma-separated); default none.
   */
  corsOrigins: string[];
  /**
   * Host names (besides loopback names and addresses and the addresses the daemon listens on) a request's `Host`
   * header may carry; others are refused (`host_not_allowed`), which defeats DNS rebinding. `*.example.com`
   * wildcards; `*` turns the check off. Env LLMOS_ALLOWED_HOSTS (comma-separated); default none.
   */
  allowedHosts: string[];
  /**
   * Folders whose GGUF files HTTP clients may import by path (`/api/models/import`, Modelfile FROM/ADAPTER).
   * Everything else must be a model in the store or an uploaded blob. Env LLMOS_IMPORT_DIRS (separated by
   * `path.delimiter`, `:` on Linux); default none.
   */
  importDirs: string[];
  /**
   * Hosts (`host` or `host:port`) pulls may reach over plain http; every other pull must use https.
   * Env LLMOS_PULL_ALLOW_HTTP (comma-separated); default none.
   */
  pullAllowHttp: string[];
  /**
   * Longest `keep_alive` a request may ask for without the `models:write` scope (longer values are capped;
   * negative and 0 need `models:write`). Env LLMOS_MAX_KEEP_ALIVE; default 30 minutes.
   */
  maxKeepAliveMs: number;
  /**
   * On SIGINT/SIGTERM (`close()`), how long requests in flight may still finish before they are cancelled.
   * Env LLMOS_DRAIN_TIMEOUT; default 30 s.
   */
  drainTimeoutMs: number;
  /** Rate-limit window scale for tests: 1 = real minutes/days. */
  rateLimitTimeScale: number;
  /**
   * OpenTelemetry traces: the collector's OTLP/HTTP base URL (spans go to `<endpoint>/v1/traces`). Undefined =
   * tracing off (the default). Env LLMOS_OTLP_ENDPOINT.
   */
  otlpEndpoint: string | undefined;
  /** Put prompt and completion text on GenAI spans. Env LLMOS_OTLP_CAPTURE_CONTENT=true; default false. */
  otlpCaptureContent: boolean;
  /** Seconds between two live snapshots on `/api/events` (and samples of the dashboard's charts). Default 2. */
  eventsIntervalMs: number;
  /** Cluster mode (several nodes coordinated through PostgreSQL); undefined = a single node (the default). */
  cluster: ClusterConfig | undefined;
  /**
   * The environment the daemon was started with (the one `loadConfig` read). Runners get it (a sandboxed runner only
   * the part runner-launcher.ts keeps) and the sandbox probe looks for programs on its PATH: passed down from here,
   * so that nothing below config reads `process.env`.
   */
  environment: Readonly<NodeJS.ProcessEnv>;
}

/** The settings of a node in a cluster (docs/cluster.md). */
export interface ClusterConfig {
  /** PostgreSQL connection URL (`postgres://user:pass@host:5432/db`). Env LLMOS_CLUSTER_URL; flag `--cluster`. */
  url: string;
  /** This node's name, unique in the cluster. Env LLMOS_NODE_NAME; flag `--node-name`; default the host name. */
  nodeName: string;
  /**
   * The URL peers reach this node at (`http://10.0.0.5:11435`). Env LLMOS_ADVERTISE; flag `--advertise`; default the
   * URL the daemon listens on.
   */
  advertise: string | undefined;
  /** Shared secret that signs node-to-node calls (at least 16 characters). Env LLMOS_CLUSTER_SECRET; required. */
  secret: string;
  /** Heartbeat interval. Env LLMOS_CLUSTER_HEARTBEAT; default 1 s. */
  heartbeatMs: number;
  /** A node without a heartbeat this long is dead (and is fenced). Env LLMOS_CLUSTER_DEAD_AFTER; default 3 s. */
  deadAfterMs: number;
  /** How long keys read before a database outage stay valid during it. Env LLMOS_CLUSTER_KEY_CACHE_TTL; default 30 s. */
  keyCacheTtlMs: number;
  /** Bytes per second a node sends or receives per blob transfer between peers; 0 = unlimited. Env LLMOS_CLUSTER_TRANSFER_RATE; default 256M. */
  transferBytesPerSecond: number;
}

/** Derived paths under `home`. */
export function homePaths(home: string) {
  return {
    models: path.join(home, "models"),
    database: path.join(home, "llmos.db"),
    adminToken: path.join(home, "admin.token"),
    logs: path.join(home, "logs"),
    lock: path.join(home, "daemon.lock"),
    cpuBackend: path.join(home, "engine", "ggml-cpu"),
  };
}

/** The folder a runner should try for a built-here CPU backend, or null for the shipped one. */
export function cpuBackendDir(config: Pick<LlmosConfig, "home" | "cpuBackend">): string | null {
  if (config.cpuBackend === "shipped") return null;
  if (config.cpuBackend === "auto") return homePaths(config.home).cpuBackend;
  return config.cpuBackend;
}

export const DEFAULT_PORT = 11435;

/** A K/V cache element type. */
export type KvCacheTypeName = "f16" | "q8_0" | "q4_0";
export const KV_CACHE_TYPE_NAMES: readonly KvCacheTypeName[] = ["f16", "q8_0", "q4_0"];

export function defaultConfig(): LlmosConfig {
  const cpus = allowedCpus();
  return {
    home: path.join(os.homedir(), ".llmos"),
    host: "127.0.0.1",
    port: DEFAULT_PORT,
    logLevel: "info",
    cpus,
    threads: cpus.length,
    cpuAffinity: false,
    engine: "llama-ffi",
    cpuBackend: "auto",
    cpuBackendBuild: "auto",
    prestart: true,
    promptCache: true,
    gpu: "auto",
    contextSize: 2048,
    parallel: 4,
    kvCacheType: { k: "f16", v: "f16" },
    streamIntervalMs: 20,
    runnerStallTimeoutMs: 60_000,
    keepAliveMs: 5 * 60_000,
    responsesTtlMs: 30 * 24 * 3_600_000,
    keepPolicy: "histogram",
    usageDayMs: 24 * 60 * 60 * 1000,
    maxQueuePerModel: 64,
    maxQueueTotal: 512,
    queueTimeoutMs: 10 * 60_000,
    memoryBudgetBytes: Math.max(1024 ** 3, os.totalmem() - 2 * 1024 ** 3),
    sandbox: "auto",
    sandboxUser: "nobody",
    memoryMargin: 0.15,
    preload: [],
    limits: {
      bodyBytes: 8 * 1024 * 1024,
      maxTokens: 32768,
      messages: 1024,
      stopSequences: 16,
      tools: 128,
      schemaBytes: 64 * 1024,
      schemaDepth: 32,
      jsonDepth: 64,
      ggufHeaderBytes: 64 * 1024 * 1024,
      blobBytes: 256 * 1024 ** 3,
    },
    hfEndpoint: "https://huggingface.co",
    hfToken: undefined,
    ociRegistry: "registry.ollama.ai",
    ociAuth: {},
    dockerConfigPath: path.join(os.homedir(), ".docker", "config.json"),
    insecureNoAuth: false,
    tls: undefined,
    corsOrigins: [],
    allowedHosts: [],
    importDirs: [],
    pullAllowHttp: [],
    maxKeepAliveMs: 30 * 60_000,
    drainTimeoutMs: 30_000,
    rateLimitTimeScale: 1,
    otlpEndpoint: undefined,
    otlpCaptureContent: false,
    eventsIntervalMs: 2000,
    cluster: undefined,
    environment: processEnvironment(),
  };
}

/**
 * This process's environment: the default of `LlmosConfig.environment`, and of the runtime's parts when they are
 * built without a config (tests, benchmarks). Config is the only reader of the environment.
 */
export function processEnvironment(): NodeJS.ProcessEnv {
  return process.env;
}
