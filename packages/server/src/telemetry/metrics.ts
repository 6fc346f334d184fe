import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** The daemon's Prometheus metrics, one registry per daemon (no global state). */
export class Metrics {
  readonly registry = new Registry();

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
  readonly memoryBytes = new Gauge({
    name: "llmos_memory_bytes",
    help: "Memory: budget, reserved by loaded models (estimate), measured runner RSS",
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

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "llmos_process_" });
  }

  async render(): Promise<string> {
    return this.registry.metrics();
  }
}
