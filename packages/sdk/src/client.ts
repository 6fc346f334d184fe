import type {
  AuditEntry,
  DaemonEvent,
  DiskUsage,
  LoadedModel,
  ModelInfo,
  ModelSummary,
  PsResponse,
  PushModelResult,
  UsageRow,
  VerifyReport,
} from "@llmos/protocol";
import { readLines, readNdjson } from "./lines.js";
import { Model } from "./model.js";
import { ProgressStream } from "./progress-stream.js";
import { resolveHost } from "./host.js";
import { KeysApi } from "./keys.js";
import { JobsApi } from "./jobs.js";
import { Transport, type FetchLike, type RequestSpec } from "./transport.js";
import type {
  AuditOptions,
  LoadModelOptions,
  ProgressEvent,
  PullOptions,
  PushOptions,
  QuantizeOptions,
  RequestOptions,
  UsageOptions,
} from "./types.js";

/** Options of {@link Client}. Every option has a default; env vars are read once, in the constructor. */
export interface ClientOptions {
  /**
   * Daemon address: a URL, `host:port`, `host` or a bare port. Default: env `LLMOS_HOST`, else
   * `http://127.0.0.1:11435`.
   */
  host?: string;
  /** API key sent as `Authorization: Bearer`. Default: env `LLMOS_API_KEY`, else none. */
  apiKey?: string;
  /** Timeout per attempt in ms (for streams: until the response starts). Default 600000 (10 minutes). */
  timeout?: number;
  /** Retries on 429/503 and, for idempotent requests, on connection errors. Default 2. */
  maxRetries?: number;
  /** `fetch` implementation. Default: the global `fetch`. */
  fetch?: FetchLike;
  /** Headers added to every request. */
  defaultHeaders?: Record<string, string>;
}

/** Options of {@link Client.list}. */
export type ListOptions = RequestOptions;

function env(name: string): string | undefined {
  // Guarded so the SDK also runs in browsers and other runtimes without `process`.
  return typeof process !== "undefined" && process?.env ? process.env[name] : undefined;
}

/** Encodes one path parameter (model names contain `:` and may contain `/`). */
function seg(value: string): string {
  return encodeURIComponent(value);
}

/**
 * Client of an llmos daemon: model management, inference handles, and the admin API.
 * @example
 * ```ts
 * import { Client } from "llmos";
 * const client = new Client();
 * const model = await client.loadModel("stories");
 * console.log(await model.generateText("Once upon a time"));
 * ```
 */
export class Client {
  /** Base URL requests go to, e.g. `http://127.0.0.1:11435`. */
  readonly host: string;
  /** API key management (`/api/keys`); needs an admin key. */
  readonly keys: KeysApi;
  /** Long model jobs (`/api/jobs`): quality evaluation (`eval`) and importance matrices (`imatrix`). */
  readonly jobs: JobsApi;
  readonly #transport: Transport;

  /** @param options - see {@link ClientOptions}; every field is optional. */
  constructor(options: ClientOptions = {}) {
    this.host = resolveHost(options.host ?? env("LLMOS_HOST"));
    const fetchImpl = options.fetch ?? (globalThis.fetch?.bind(globalThis) as FetchLike | undefined);
    if (!fetchImpl) throw new TypeError("no fetch implementation: pass options.fetch");
    this.#transport = new Transport({
      baseUrl: this.host,
      apiKey: options.apiKey ?? (env("LLMOS_API_KEY") || undefined),
      timeout: options.timeout ?? 10 * 60_000,
      maxRetries: options.maxRetries ?? 2,
      fetch: fetchImpl,
      defaultHeaders: options.defaultHeaders ?? {},
    });
    this.keys = new KeysApi(this.#transport);
    this.jobs = new JobsApi(this.#transport);
  }

  /** Whether requests carry an API key. */
  get hasApiKey(): boolean {
    return this.#transport.settings.apiKey !== undefined;
  }

  /**
   * Loads a model (or refreshes its keep-alive if loaded) and returns a handle for inference.
   * @throws ModelNotFoundError when no model has that name.
   */
  async loadModel(name: string, opts: LoadModelOptions = {}): Promise<Model> {
    const { signal, timeout, ...body } = opts;
    const info = await this.#transport.json<LoadedModel>({
      method: "POST",
      path: `/api/models/${seg(name)}/load`,
      body,
      signal,
      timeout,
      idempotent: true,
    });
    return new Model(this.#transport, info?.name ?? name, info, (n, o) => this.unloadModel(n, o));
  }

  /** A handle on a model without loading it first (the daemon loads it on the first request). */
  model(name: string): Model {
    return new Model(this.#transport, name, undefined, (n, o) => this.unloadModel(n, o));
  }

  /** Unloads a model now (its runner process exits). */
  async unloadModel(name: string, opts: RequestOptions = {}): Promise<void> {
    await this.#transport.json({
      method: "POST",
      path: `/api/models/${seg(name)}/unload`,
      body: {},
      ...opts,
      idempotent: true,
    });
  }

  /** Lists installed models. */
  async list(opts: ListOptions = {}): Promise<ModelSummary[]> {
    const res = await this.#transport.json<{ models: ModelSummary[] }>({ method: "GET", path: "/api/models", ...opts });
    return res.models;
  }

  /** Details of one installed model. @throws ModelNotFoundError */
  show(name: string, opts: RequestOptions = {}): Promise<ModelInfo> {
    return this.#transport.json<ModelInfo>({ method: "GET", path: `/api/models/${seg(name)}`, ...opts });
  }

  /**
   * Imports a GGUF file on the daemon's machine as `name[:tag]`: an absolute path inside one of the daemon's
   * `LLMOS_IMPORT_DIRS` (else 403 `path_not_allowed`). To import a file from the client's machine, upload it
   * with {@link uploadBlob} and {@link create} a model `FROM @sha256:<hex>`.
   */
  importModel(path: string, name: string, opts: RequestOptions = {}): Promise<ModelInfo> {
    return this.#transport.json<ModelInfo>({
      method: "POST",
      path: "/api/models/import",
      body: { path, name },
      ...opts,
    });
  }

  /**
   * Downloads a model (e.g. `hf.co/owner/repo:Q4_K_M`). Iterate the result for progress, or `await` it for the
   * resulting {@link ModelInfo}.
   */
  pull(reference: string, opts: PullOptions = {}): ProgressStream {
    const { signal, timeout, name, revision, insecure } = opts;
    return this.#progress({
      method: "POST",
      path: "/api/models/pull",
      body: { reference, name, revision, ...(insecure ? { insecure } : {}) },
      signal,
      timeout,
    });
  }

  /**
   * Pushes a model to an OCI registry (`registry.example.com/team/model:tag`, `oci://...`) in Ollama's layer layout.
   * Iterate for progress, or `await` for where it went and the manifest's digest.
   */
  push(name: string, reference: string, opts: PushOptions = {}): ProgressStream<PushModelResult> {
    const { signal, timeout, insecure } = opts;
    return this.#progress(
      {
        method: "POST",
        path: "/api/models/push",
        body: { name, reference, ...(insecure ? { insecure } : {}) },
        signal,
        timeout,
      },
      (event) =>
        event.reference !== undefined && event.manifestDigest !== undefined
          ? { reference: event.reference, manifestDigest: event.manifestDigest }
          : undefined,
    );
  }

  /** Whether the daemon has a blob (`HEAD /api/blobs/:digest`); `digest` is `sha256:<hex>`. */
  async hasBlob(digest: string, opts: RequestOptions = {}): Promise<boolean> {
    try {
      await this.#transport.json({ method: "HEAD", path: `/api/blobs/${seg(digest)}`, ...opts });
      return true;
    } catch (error) {
      if ((error as { status?: number }).status === 404) return false;
      throw error;
    }
  }

  /**
   * Uploads a file's bytes as a blob (`POST /api/blobs/:digest`); the daemon checks they hash to `digest`
   * (`sha256:<hex>`). A Blob (e.g. Node's `fs.openAsBlob(file)`) is streamed with its size.
   */
  async uploadBlob(digest: string, data: Blob | Uint8Array, opts: RequestOptions = {}): Promise<void> {
    const open = await this.#transport.open({
      method: "POST",
      path: `/api/blobs/${seg(digest)}`,
      rawBody: data,
      ...opts,
      idempotent: true,
    });
    try {
      await open.response.arrayBuffer();
    } finally {
      open.close();
    }
  }

  /** Creates a model from a definition file (Modelfile syntax). Iterate for progress or `await` for the model. */
  create(name: string, modelfile: string, opts: RequestOptions = {}): ProgressStream {
    return this.#progress({ method: "POST", path: "/api/models/create", body: { name, modelfile }, ...opts });
  }

  /**
   * Quantizes `model` into the new model `name` (e.g. `{ type: "Q4_K_M" }`). Iterate for progress (`completed` /
   * `total` tensors, `bytes` written) or `await` for the new model.
   */
  quantize(model: string, name: string, opts: QuantizeOptions): ProgressStream {
    const { signal, timeout, ...rest } = opts;
    return this.#progress({
      method: "POST",
      path: "/api/models/quantize",
      body: { model, name, ...rest },
      signal,
      timeout,
    });
  }

  /** Deletes a model (blobs still used by other models stay). */
  async remove(name: string, opts: RequestOptions = {}): Promise<void> {
    await this.#transport.json({ method: "DELETE", path: `/api/models/${seg(name)}`, ...opts });
  }

  /** Copies a model to a new name (shares blobs). */
  copy(source: string, destination: string, opts: RequestOptions = {}): Promise<ModelInfo> {
    return this.#transport.json<ModelInfo>({
      method: "POST",
      path: `/api/models/${seg(source)}/copy`,
      body: { destination },
      ...opts,
    });
  }

  /** Loaded models and queue state. */
  ps(opts: RequestOptions = {}): Promise<PsResponse> {
    return this.#transport.json<PsResponse>({ method: "GET", path: "/api/ps", ...opts });
  }

  /** Tokenizes text with a model's vocabulary (no BOS added unless the model's tokenizer adds it). */
  async tokenize(model: string, content: string, opts: RequestOptions = {}): Promise<number[]> {
    const res = await this.#transport.json<{ tokens: number[] }>({
      method: "POST",
      path: "/api/tokenize",
      body: { model, content },
      ...opts,
      idempotent: true,
    });
    return res.tokens;
  }

  /** Turns token ids back into text. */
  async detokenize(model: string, tokens: number[], opts: RequestOptions = {}): Promise<string> {
    const res = await this.#transport.json<{ content: string }>({
      method: "POST",
      path: "/api/detokenize",
      body: { model, tokens },
      ...opts,
      idempotent: true,
    });
    return res.content;
  }

  /** The node's inventory (CPU, memory, GPU, engine, disk), as the daemon reports it. */
  system(opts: RequestOptions = {}): Promise<Record<string, unknown>> {
    return this.#transport.json<Record<string, unknown>>({ method: "GET", path: "/api/system", ...opts });
  }

  /** Whether the daemon is up (`GET /healthz` answered 2xx). Never throws; no retries. */
  async health(opts: RequestOptions = {}): Promise<boolean> {
    try {
      await this.#transport.json({ method: "GET", path: "/healthz", maxRetries: 0, ...opts });
      return true;
    } catch {
      return false;
    }
  }

  /** Token and request usage per key, model and day (`GET /api/usage`); needs an admin key. */
  async usage(opts: UsageOptions = {}): Promise<UsageRow[]> {
    const { since, keyId, model, ...rest } = opts;
    const res = await this.#transport.json<{ usage: UsageRow[] }>({
      method: "GET",
      path: "/api/usage",
      query: { since, keyId, model },
      ...rest,
    });
    return res.usage;
  }

  /** Audit-log entries, newest first (`GET /api/audit`); needs an admin key. */
  async audit(opts: AuditOptions = {}): Promise<AuditEntry[]> {
    const { since, limit, action, ...rest } = opts;
    const res = await this.#transport.json<{ entries: AuditEntry[] }>({
      method: "GET",
      path: "/api/audit",
      query: { since, limit, action },
      ...rest,
    });
    return res.entries;
  }

  /** Re-hashes every blob of the model store (`POST /api/store/verify`); needs an admin key. Slow on big stores. */
  verify(opts: RequestOptions = {}): Promise<VerifyReport> {
    return this.#transport.json<VerifyReport>({ method: "POST", path: "/api/store/verify", body: {}, ...opts });
  }

  /** Disk use of the model store (`GET /api/store/usage`). */
  diskUsage(opts: RequestOptions = {}): Promise<DiskUsage> {
    return this.#transport.json<DiskUsage>({ method: "GET", path: "/api/store/usage", ...opts });
  }

  /**
   * Sends any request to the daemon with this client's auth, retries and error mapping; for endpoints
   * without a dedicated method. `path` must already be encoded.
   */
  request<T = unknown>(spec: RequestSpec): Promise<T> {
    return this.#transport.json<T>(spec);
  }

  /**
   * The daemon's live events (`GET /api/events`, needs the `metrics` scope): a snapshot every few seconds (models,
   * memory, requests, chart figures) and change events in between. One connection; pass the last `id` seen as
   * `lastEventId` to resume after a drop. Stop with `signal` or by leaving the loop.
   */
  async *events(opts: RequestOptions & { lastEventId?: number } = {}): AsyncGenerator<DaemonEvent> {
    const { lastEventId, ...rest } = opts;
    const open = await this.#transport.open({
      method: "GET",
      path: "/api/events",
      ...rest,
      ...(lastEventId !== undefined ? { headers: { "last-event-id": String(lastEventId) } } : {}),
      maxRetries: 0,
    });
    open.stopTimer();
    let id: number | null = null;
    let type = "message";
    let data: string[] = [];
    for await (const line of readLines(open)) {
      if (line === "") {
        if (data.length > 0 && id !== null) yield { id, type, data: JSON.parse(data.join("\n")) } as DaemonEvent;
        type = "message";
        data = [];
      } else if (line.startsWith("id:")) id = Number(line.slice(3).trim());
      else if (line.startsWith("event:")) type = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
  }

  #progress<T = ModelInfo>(spec: RequestSpec, result?: (event: ProgressEvent) => T | undefined): ProgressStream<T> {
    const transport = this.#transport;
    return new ProgressStream<T>(async function* () {
      const open = await transport.open(spec);
      open.stopTimer();
      yield* readNdjson<ProgressEvent>(open);
    }, result);
  }
}
