import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { EventHub } from "./event-hub.js";
import { RequestTracker } from "./request-tracker.js";

/**
 * The daemon's telemetry, one per daemon (no global state): the Prometheus registry, and beside it the live event
 * hub and the tracker of requests in flight. They travel together because the scheduler and inference already
 * receive this object, and because the dashboard's figures must come from the same sources as `/metrics`.
 * Metric names are documented in docs/metrics.md and kept stable.
 */
export class Metrics {
  readonly registry = new Registry();
  /** Change events for `/api/events`. */
  readonly events = new EventHub();

  readonly httpRequests = new Counter({
    name: "llmos_http_requests_total",
    help: "HTTP requests by route, method and status",
    labelNames: ["route", "method", "status"] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: "llmos_http_request_duration_seconds",
    help: "HTTP request duration",
    labelNames: ["route", "method"] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
    registers: [this.registry],
  });
  readonly timeToFirstToken = new Histogram({
    name: "llmos_time_to_first_token_seconds",
    help: "Time from request arrival to the first generated token",
    labelNames: ["model"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly tokens = new Counter({
    name: "llmos_tokens_total",
    help: "Tokens processed, by model and kind (prompt|completion)",
    labelNames: ["model", "kind"] as const,
    registers: [this.registry],
  });
  readonly promptCacheTokens = new Counter({
    name: "llmos_prompt_cache_tokens_total",
    help: "Prompt tokens by model and prompt-cache result: hit (KV cells reused) or miss (evaluated)",
    labelNames: ["model", "result"] as const,
    registers: [this.registry],
  });
  readonly generations = new Counter({
    name: "llmos_generations_total",
    help: "Finished generations by model and finish reason",
    labelNames: ["model", "reason"] as const,
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: "llmos_queue_depth",
    help: "Requests waiting for a slot, by model",
    labelNames: ["model"] as const,
    registers: [this.registry],
  });
  readonly queueWait = new Histogram({
    name: "llmos_queue_wait_seconds",
    help: "Time requests waited in the queue",
    labelNames: ["model"] as const,
    buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 15, 60, 300],
    registers: [this.registry],
  });
  readonly loadedModels = new Gauge({
    name: "llmos_loaded_models",
    help: "Models loaded in runners",
    registers: [this.registry],
  });
  readonly modelLoads = new Counter({
    name: "llmos_model_loads_total",
    help: "Model loads by result",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly evictions = new Counter({
    name: "llmos_model_evictions_total",
    help: "Models evicted to make room",
    registers: [this.registry],
  });
  readonly runnerCrashes = new Counter({
    name: "llmos_runner_crashes_total",
    help: "Runner processes that exited unexpectedly",
    registers: [this.registry],
  });
  readonly runnerStalls = new Counter({
    name: "llmos_runner_stalls_total",
    help: "Runner processes killed by the watchdog: they had work and made no progress for the stall timeout",
    registers: [this.registry],
  });
  readonly runnerOomKills = new Counter({
    name: "llmos_runner_oom_kills_total",
    help: "Runners the kernel stopped for going past their memory limit (their cgroup's), by model",
    labelNames: ["model"] as const,
    registers: [this.registry],
  });
  readonly memoryBytes = new Gauge({
    name: "llmos_memory_bytes",
    help: "Memory: budget, reserved by loaded models and held by running model-tool jobs (estimates), measured runner RSS",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });

  readonly nodeMemory = new Gauge({
    name: "llmos_node_memory_bytes",
    help: "This node's RAM: total and available",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });
  readonly nodeCpuCores = new Gauge({
    name: "llmos_node_cpu_cores",
    help: "CPU cores of this node",
    registers: [this.registry],
  });
  readonly gpuVram = new Gauge({
    name: "llmos_gpu_vram_bytes",
    help: "GPU memory by device: total and free",
    labelNames: ["device", "kind"] as const,
    registers: [this.registry],
  });

  readonly clusterBlobTransferBytes = new Counter({
    name: "llmos_cluster_blob_transfer_bytes_total",
    help: "Cluster: bytes of model blobs this node received from each peer",
    labelNames: ["peer"] as const,
    registers: [this.registry],
  });

  readonly requestsRunning = new Gauge({
    name: "llmos_requests_running",
    help: "Generations holding a slot, by model",
    labelNames: ["model"] as const,
    registers: [this.registry],
  });
  readonly timePerOutputToken = new Histogram({
    name: "llmos_time_per_output_token_seconds",
    help: "Time per generated token after the first (inter-token latency), per generation",
    labelNames: ["model"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly modelLoadSeconds = new Histogram({
    name: "llmos_model_load_seconds",
    help: "Time to start a runner and load a model into it",
    labelNames: ["model"] as const,
    buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    registers: [this.registry],
  });
  readonly coldStarts = new Counter({
    name: "llmos_cold_starts_total",
    help: "Requests that waited for their model to load",
    labelNames: ["model"] as const,
    registers: [this.registry],
  });
  readonly prewarms = new Counter({
    name: "llmos_prewarm_total",
    help: "Models loaded ahead of a predicted request, by outcome (used: a request came; wasted: unloaded unused; failed: did not load)",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly idleMemory = new Counter({
    name: "llmos_idle_memory_byte_seconds_total",
    help: "Memory held by loaded models that serve nothing (no request running or queued), integrated over time",
    labelNames: ["model"] as const,
    registers: [this.registry],
    // Counts the idle time up to the scrape, not only up to the last scheduler event.
    collect: () => {
      for (const hook of this.beforeCollect) hook();
    },
  });
  readonly keepPolicy = new Gauge({
    name: "llmos_keep_policy_info",
    help: "The keep-alive policy in use (1), by name, and the one configured when it fell back",
    labelNames: ["policy", "configured"] as const,
    registers: [this.registry],
  });
  readonly promptCacheLookups = new Counter({
    name: "llmos_prompt_cache_lookups_total",
    help: "Generations by whether the runner reused cached prompt tokens (result: hit|miss)",
    labelNames: ["model", "result"] as const,
    registers: [this.registry],
  });
  readonly promptCachedTokens = new Counter({
    name: "llmos_prompt_cached_tokens_total",
    help: "Prompt tokens taken from the KV cache instead of being evaluated",
    labelNames: ["model"] as const,
    registers: [this.registry],
  });
  readonly cpuCores = new Gauge({
    name: "llmos_cpu_cores",
    help: "CPU cores the scheduler shares among busy runners (LLMOS_CPUS)",
    registers: [this.registry],
  });
  readonly runnerThreads = new Gauge({
    name: "llmos_runner_threads",
    help: "Decode threads allotted to a model's runner (0 while the model is idle)",
    labelNames: ["model"] as const,
    registers: [this.registry],
  });
  readonly cpuAllotmentApply = new Histogram({
    name: "llmos_cpu_allotment_apply_seconds",
    help: "Time from a CPU allotment decision to its runner applying it (between two of its decode steps)",
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  /** Where `llmos_decode_steps_total` reads the runners' counters at each scrape (the daemon sets it). */
  runnerSteps: (() => Promise<Array<{ model: string; decodeBatches: number; contendedBatches: number }>>) | undefined;
  readonly decodeSteps: Counter<"model" | "contended"> = ((source: () => Metrics["runnerSteps"]) =>
    new Counter({
      name: "llmos_decode_steps_total",
      help: "Decode steps that carried generated tokens, by model and whether other runners were busy on the same cores meanwhile (contended); counted by the runners since they loaded",
      labelNames: ["model", "contended"] as const,
      registers: [this.registry],
      async collect() {
        const rows = (await source()?.()) ?? [];
        this.reset();
        for (const r of rows) {
          this.inc({ model: r.model, contended: "true" }, r.contendedBatches);
          this.inc({ model: r.model, contended: "false" }, Math.max(0, r.decodeBatches - r.contendedBatches));
        }
      },
    }))(() => this.runnerSteps);
  readonly eventStreams = new Gauge({
    name: "llmos_event_streams",
    help: "Clients connected to /api/events",
    registers: [this.registry],
  });

  private readonly beforeCollect: Array<() => void> = [];

  /** Runs `hook` before the counters are read (to bring time-integrated counters up to date). */
  onCollect(hook: () => void): void {
    this.beforeCollect.push(hook);
  }

  /** Requests in flight; keeps `llmos_requests_running` in step with the dashboard's list. */
  readonly requests = new RequestTracker(this.events, (model, delta) => this.requestsRunning.inc({ model }, delta));

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "llmos_process_" });
  }

  async render(): Promise<string> {
    return this.registry.metrics();
  }
}
