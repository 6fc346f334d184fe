import os from "node:os";
import path from "node:path";
import { KEEP_POLICY_NAMES } from "@llmos/protocol";
import { defaultConfig, DEFAULT_PORT, KV_CACHE_TYPE_NAMES, type ClusterConfig, type LlmosConfig } from "./config.js";
import { parseManagedCpus } from "./cpu-set.js";

/** Command-line flags that override the environment. */
export interface ConfigFlags {
  host?: string;
  port?: number;
  preload?: string[];
  insecureNoAuth?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  /** `--cluster postgres://...` (LLMOS_CLUSTER_URL). */
  cluster?: string;
  /** `--node-name` (LLMOS_NODE_NAME). */
  nodeName?: string;
  /** `--advertise http://host:port` (LLMOS_ADVERTISE). */
  advertise?: string;
}

/**
 * Builds the daemon's configuration from the environment and flags. The only reader of the environment:
 * everything else receives the resulting object.
 */
export function loadConfig(input: {
  env: NodeJS.ProcessEnv;
  flags?: ConfigFlags;
  overrides?: Partial<LlmosConfig>;
}): LlmosConfig {
  const { env, flags = {} } = input;
  const c = defaultConfig();
  c.environment = env;
  if (env.LLMOS_HOME) c.home = path.resolve(expandHome(env.LLMOS_HOME));
  if (env.LLMOS_LOG_LEVEL)
    c.logLevel = oneOf(
      env.LLMOS_LOG_LEVEL,
      ["fatal", "error", "warn", "info", "debug", "trace", "silent"],
      "LLMOS_LOG_LEVEL",
    );
  if (env.LLMOS_CPUS) c.cpus = parseManagedCpus(env.LLMOS_CPUS, c.cpus);
  c.threads = env.LLMOS_THREADS ? positiveInt(env.LLMOS_THREADS, "LLMOS_THREADS") : c.cpus.length;
  if (env.LLMOS_CPU_AFFINITY)
    c.cpuAffinity = oneOf(env.LLMOS_CPU_AFFINITY, ["on", "off"], "LLMOS_CPU_AFFINITY") === "on";
  if (env.LLMOS_ENGINE) c.engine = oneOf(env.LLMOS_ENGINE, ["llama-ffi", "llama-node"], "LLMOS_ENGINE");
  if (env.LLMOS_CPU_BACKEND) {
    const v = env.LLMOS_CPU_BACKEND;
    c.cpuBackend = v === "auto" || v === "shipped" ? v : path.resolve(expandHome(v));
  }
  if (env.LLMOS_CPU_BACKEND_BUILD)
    c.cpuBackendBuild = oneOf(env.LLMOS_CPU_BACKEND_BUILD, ["auto", "off"], "LLMOS_CPU_BACKEND_BUILD");
  if (env.LLMOS_PRESTART) c.prestart = oneOf(env.LLMOS_PRESTART, ["on", "off"], "LLMOS_PRESTART") === "on";
  if (env.LLMOS_PROMPT_CACHE)
    c.promptCache = oneOf(env.LLMOS_PROMPT_CACHE, ["on", "off"], "LLMOS_PROMPT_CACHE") === "on";
  if (env.LLMOS_GPU) c.gpu = oneOf(env.LLMOS_GPU, ["auto", "off"], "LLMOS_GPU");
  if (env.LLMOS_CONTEXT_SIZE) c.contextSize = positiveInt(env.LLMOS_CONTEXT_SIZE, "LLMOS_CONTEXT_SIZE");
  if (env.LLMOS_NUM_PARALLEL) c.parallel = positiveInt(env.LLMOS_NUM_PARALLEL, "LLMOS_NUM_PARALLEL");
  if (env.LLMOS_KV_CACHE_TYPE) {
    const both = oneOf(env.LLMOS_KV_CACHE_TYPE, KV_CACHE_TYPE_NAMES, "LLMOS_KV_CACHE_TYPE");
    c.kvCacheType = { k: both, v: both };
  }
  if (env.LLMOS_KV_CACHE_TYPE_K)
    c.kvCacheType = {
      ...c.kvCacheType,
      k: oneOf(env.LLMOS_KV_CACHE_TYPE_K, KV_CACHE_TYPE_NAMES, "LLMOS_KV_CACHE_TYPE_K"),
    };
  if (env.LLMOS_KV_CACHE_TYPE_V)
    c.kvCacheType = {
      ...c.kvCacheType,
      v: oneOf(env.LLMOS_KV_CACHE_TYPE_V, KV_CACHE_TYPE_NAMES, "LLMOS_KV_CACHE_TYPE_V"),
    };
  if (env.LLMOS_STREAM_INTERVAL_MS)
    c.streamIntervalMs = nonNegativeInt(env.LLMOS_STREAM_INTERVAL_MS, "LLMOS_STREAM_INTERVAL_MS");
  if (env.LLMOS_KEEP_ALIVE) c.keepAliveMs = parseDurationMs(env.LLMOS_KEEP_ALIVE);
  if (env.LLMOS_RUNNER_STALL_TIMEOUT) {
    c.runnerStallTimeoutMs = parseDurationMs(env.LLMOS_RUNNER_STALL_TIMEOUT);
    if (c.runnerStallTimeoutMs < 0) throw new Error(`LLMOS_RUNNER_STALL_TIMEOUT must be 0 (off) or a duration`);
  }
  if (env.LLMOS_RESPONSES_TTL) {
    c.responsesTtlMs = parseDurationMs(env.LLMOS_RESPONSES_TTL);
    if (!(c.responsesTtlMs > 0)) throw new Error("LLMOS_RESPONSES_TTL must be a positive duration (e.g. 30d, 12h)");
  }
  if (env.LLMOS_KEEP_POLICY) c.keepPolicy = oneOf(env.LLMOS_KEEP_POLICY, KEEP_POLICY_NAMES, "LLMOS_KEEP_POLICY");
  if (env.LLMOS_MAX_QUEUE) c.maxQueuePerModel = positiveInt(env.LLMOS_MAX_QUEUE, "LLMOS_MAX_QUEUE");
  if (env.LLMOS_MEMORY_BUDGET) c.memoryBudgetBytes = parseBytes(env.LLMOS_MEMORY_BUDGET);
  if (env.LLMOS_SANDBOX) c.sandbox = oneOf(env.LLMOS_SANDBOX, ["auto", "off", "required"], "LLMOS_SANDBOX");
  if (env.LLMOS_SANDBOX_USER) c.sandboxUser = env.LLMOS_SANDBOX_USER.trim();
  if (env.LLMOS_MEMORY_MARGIN) c.memoryMargin = parseRatio(env.LLMOS_MEMORY_MARGIN, "LLMOS_MEMORY_MARGIN");
  if (env.LLMOS_HF_ENDPOINT) c.hfEndpoint = env.LLMOS_HF_ENDPOINT.replace(/\/+$/, "");
  if (env.HF_TOKEN) c.hfToken = env.HF_TOKEN;
  if (env.LLMOS_OCI_REGISTRY) c.ociRegistry = parseRegistryValue(env.LLMOS_OCI_REGISTRY);
  if (env.LLMOS_OCI_AUTH) c.ociAuth = parseOciAuth(env.LLMOS_OCI_AUTH);
  if (env.DOCKER_CONFIG) c.dockerConfigPath = path.join(path.resolve(expandHome(env.DOCKER_CONFIG)), "config.json");
  if (env.LLMOS_OTLP_ENDPOINT) c.otlpEndpoint = otlpEndpoint(env.LLMOS_OTLP_ENDPOINT);
  if (env.LLMOS_OTLP_CAPTURE_CONTENT)
    c.otlpCaptureContent =
      oneOf(env.LLMOS_OTLP_CAPTURE_CONTENT, ["true", "false"], "LLMOS_OTLP_CAPTURE_CONTENT") === "true";
  if (env.LLMOS_PRELOAD)
    c.preload = env.LLMOS_PRELOAD.split(",")
      .map((s) => s.trim())
      .filter(Boolean);
  // LLMOS_CORS_ORIGINS is the older name of LLMOS_ORIGINS.
  const origins = env.LLMOS_ORIGINS ?? env.LLMOS_CORS_ORIGINS;
  if (origins) c.corsOrigins = list(origins);
  if (env.LLMOS_ALLOWED_HOSTS) c.allowedHosts = list(env.LLMOS_ALLOWED_HOSTS).map((h) => h.toLowerCase());
  if (env.LLMOS_IMPORT_DIRS)
    c.importDirs = env.LLMOS_IMPORT_DIRS.split(path.delimiter)
      .map((s) => s.trim())
      .filter(Boolean)
      .map((d) => path.resolve(expandHome(d)));
  if (env.LLMOS_PULL_ALLOW_HTTP) c.pullAllowHttp = list(env.LLMOS_PULL_ALLOW_HTTP).map((h) => h.toLowerCase());
  if (env.LLMOS_MAX_KEEP_ALIVE) {
    c.maxKeepAliveMs = parseDurationMs(env.LLMOS_MAX_KEEP_ALIVE);
    if (c.maxKeepAliveMs < 0) throw new Error("LLMOS_MAX_KEEP_ALIVE must be a duration of 0 or more");
  }
  if (env.LLMOS_DRAIN_TIMEOUT) {
    c.drainTimeoutMs = parseDurationMs(env.LLMOS_DRAIN_TIMEOUT);
    if (c.drainTimeoutMs < 0) throw new Error("LLMOS_DRAIN_TIMEOUT must be a duration of 0 or more");
  }
  if (env.LLMOS_MAX_GGUF_HEADER) c.limits.ggufHeaderBytes = parseBytes(env.LLMOS_MAX_GGUF_HEADER);
  if (env.LLMOS_MAX_BLOB_SIZE) c.limits.blobBytes = parseBytes(env.LLMOS_MAX_BLOB_SIZE);
  // LLMOS_HOST is the clients' URL of the daemon (like OLLAMA_HOST); serve binds to its host and port.
  if (env.LLMOS_HOST) {
    const bind = parseHostUrl(env.LLMOS_HOST);
    c.host = bind.host;
    c.port = bind.port;
  }
  if (flags.host !== undefined) c.host = flags.host;
  if (flags.port !== undefined) c.port = flags.port;
  if (flags.preload?.length) c.preload = flags.preload;
  if (flags.insecureNoAuth) c.insecureNoAuth = true;
  if (flags.tlsCert || flags.tlsKey) {
    if (!flags.tlsCert || !flags.tlsKey) throw new Error("--tls-cert and --tls-key go together");
    c.tls = { cert: flags.tlsCert, key: flags.tlsKey };
  }
  c.cluster = clusterConfig(env, flags);
  // Peers call this node by its advertised name: the Host check must accept it (k8s `llmos-0.llmos`, ...).
  if (c.cluster?.advertise) {
    const host = new URL(c.cluster.advertise).hostname.replace(/^\[|\]$/g, "").toLowerCase();
    if (!c.allowedHosts.includes(host)) c.allowedHosts = [...c.allowedHosts, host];
  }
  return { ...c, ...input.overrides, limits: { ...c.limits, ...input.overrides?.limits } };
}

/** The cluster settings when a PostgreSQL URL is given (flag or LLMOS_CLUSTER_URL); undefined otherwise. */
export function clusterConfig(env: NodeJS.ProcessEnv, flags: ConfigFlags = {}): ClusterConfig | undefined {
  const url = flags.cluster ?? env.LLMOS_CLUSTER_URL;
  if (!url) return undefined;
  if (!/^postgres(ql)?:\/\//.test(url)) throw new Error("LLMOS_CLUSTER_URL (--cluster) must be a postgres:// URL");
  const secret = env.LLMOS_CLUSTER_SECRET ?? "";
  if (secret.length < 16)
    throw new Error("cluster mode needs LLMOS_CLUSTER_SECRET (at least 16 characters) to sign node-to-node calls");
  const nodeName = (flags.nodeName ?? env.LLMOS_NODE_NAME ?? os.hostname()).toLowerCase();
  if (!/^[a-z0-9][a-z0-9._-]{0,62}$/.test(nodeName))
    throw new Error(`node name must be 1-63 characters of a-z, 0-9, ".", "_", "-", got ${JSON.stringify(nodeName)}`);
  const advertise = flags.advertise ?? env.LLMOS_ADVERTISE;
  if (advertise !== undefined && !/^https?:\/\/[^/]+\/?$/.test(advertise))
    throw new Error(`--advertise (LLMOS_ADVERTISE) must be http(s)://host:port, got ${JSON.stringify(advertise)}`);
  const duration = (name: string, fallback: number) => {
    const v = env[name];
    if (v === undefined) return fallback;
    const ms = parseDurationMs(v);
    if (!(ms > 0)) throw new Error(`${name} must be a positive duration, got "${v}"`);
    return ms;
  };
  const heartbeatMs = duration("LLMOS_CLUSTER_HEARTBEAT", 1000);
  const deadAfterMs = duration("LLMOS_CLUSTER_DEAD_AFTER", 3000);
  if (deadAfterMs < 2 * heartbeatMs)
    throw new Error("LLMOS_CLUSTER_DEAD_AFTER must be at least twice LLMOS_CLUSTER_HEARTBEAT");
  return {
    url,
    nodeName,
    advertise: advertise?.replace(/\/+$/, ""),
    secret,
    heartbeatMs,
    deadAfterMs,
    keyCacheTtlMs: duration("LLMOS_CLUSTER_KEY_CACHE_TTL", 30_000),
    transferBytesPerSecond:
      env.LLMOS_CLUSTER_TRANSFER_RATE === undefined ? 256 * 1024 ** 2 : parseBytes(env.LLMOS_CLUSTER_TRANSFER_RATE),
  };
}

/** `registry.example.com[:port]` or an `https://` / `http://` URL of a registry (no path). */
export function parseRegistryValue(value: string): string {
  const text = value.trim().replace(/\/+$/, "");
  let url: URL;
  try {
    url = new URL(/^[a-z]+:\/\//i.test(text) ? text : `https://${text}`);
  } catch {
    throw new Error(`LLMOS_OCI_REGISTRY must be host[:port] or an http(s) URL, got "${value}"`);
  }
  if ((url.protocol !== "https:" && url.protocol !== "http:") || url.pathname !== "/" || url.search || url.username) {
    throw new Error(`LLMOS_OCI_REGISTRY must be host[:port] or an http(s) URL without a path, got "${value}"`);
  }
  return /^[a-z]+:\/\//i.test(text) ? `${url.protocol}//${url.host}` : url.host;
}

/**
 * `host=user:password host2=token` (white-space separated) -> credentials by host. A value with a colon is a user
 * and password; one without is a bearer token.
 */
export function parseOciAuth(value: string): LlmosConfig["ociAuth"] {
  const out: LlmosConfig["ociAuth"] = {};
  for (const entry of value.split(/\s+/).filter(Boolean)) {
    const eq = entry.indexOf("=");
    const host = eq > 0 ? entry.slice(0, eq).toLowerCase() : "";
    const secret = eq > 0 ? entry.slice(eq + 1) : "";
    if (!host || !secret) throw new Error("LLMOS_OCI_AUTH entries are host=user:password or host=token");
    const colon = secret.indexOf(":");
    out[host] = colon > 0 ? { username: secret.slice(0, colon), password: secret.slice(colon + 1) } : { token: secret };
  }
  return out;
}

/** Accepts `http://h:p`, `h:p`, `h` or `:p` like OLLAMA_HOST. */
export function parseHostUrl(value: string): { host: string; port: number; url: string } {
  const raw = value.includes("://") ? value : `http://${value.startsWith(":") ? "127.0.0.1" + value : value}`;
  const u = new URL(raw);
  const port = u.port ? Number(u.port) : DEFAULT_PORT;
  const host = u.hostname.replace(/^\[|\]$/g, "");
  return { host, port, url: `${u.protocol}//${u.host.includes(":") ? u.host : `${u.host}:${port}`}` };
}

/** `300`, `300s`, `5m`, `1h`, `-1` (forever) -> milliseconds (-1 for forever). Bare numbers are seconds. */
export function parseDurationMs(value: string | number): number {
  if (typeof value === "number") return value < 0 ? -1 : value * 1000;
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(value);
  if (!m) throw new Error(`invalid duration "${value}": use seconds or a number with ms, s, m, h or d`);
  const n = Number(m[1]);
  if (n < 0) return -1;
  const unit = m[2] ?? "s";
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit]!;
  return Math.round(n * factor);
}

/** `512M`, `2G`, `1073741824` -> bytes. */
export function parseBytes(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$/i.exec(value);
  if (!m) throw new Error(`invalid size "${value}": use bytes or a number with K, M, G or T`);
  const unit = (m[2] ?? "B").toUpperCase()[0]!;
  const factor = { B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[unit as "B"]!;
  return Math.round(Number(m[1]) * factor);
}

function list(value: string): string[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** `15%` or `0.15` -> 0.15 (0 to 10, i.e. up to 1000%). */
export function parseRatio(value: string, name: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$/.exec(value);
  const ratio = m ? Number(m[1]) / (m[2] ? 100 : 1) : NaN;
  if (!Number.isFinite(ratio) || ratio > 10)
    throw new Error(`${name} must be a percentage like 15% or a fraction like 0.15, got "${value}"`);
  return ratio;
}

function expandHome(p: string): string {
  return p.startsWith("~/") ? path.join(os.homedir(), p.slice(2)) : p;
}

function positiveInt(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got "${v}"`);
  return n;
}

function nonNegativeInt(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${v}"`);
  return n;
}

function oneOf<T extends string>(v: string, allowed: readonly T[], name: string): T {
  if (!(allowed as readonly string[]).includes(v))
    throw new Error(`${name} must be one of ${allowed.join(", ")}, got "${v}"`);
  return v as T;
}

/** An OTLP/HTTP collector base URL (http or https), without a trailing slash. */
function otlpEndpoint(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`LLMOS_OTLP_ENDPOINT must be a URL like http://127.0.0.1:4318, got ${JSON.stringify(value)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new Error(`LLMOS_OTLP_ENDPOINT must be an http or https URL, got ${JSON.stringify(value)}`);
  return value.replace(/\/+$/, "");
}
