/**
 * A registry stand-in for tests: real HTTP servers on 127.0.0.1 that speak the OCI distribution API the way
 * registries do (distribution, Ollama's registry.ollama.ai):
 *
 * - `GET /token?service=&scope=`: the token endpoint of the bearer challenge (`WWW-Authenticate: Bearer realm=...`).
 *   Anonymous callers get pull tokens (unless `privatePull`); push needs Basic credentials of a user.
 * - `GET|HEAD /v2/{repo}/manifests/{tag|digest}`: content negotiation by `Accept` (a manifest stored as an OCI image
 *   manifest is not served to a client that accepts only Docker v2, and the other way round); `Docker-Content-Digest`;
 *   404 `NAME_UNKNOWN` / `MANIFEST_UNKNOWN` in the OCI error shape.
 * - `GET|HEAD /v2/{repo}/blobs/{digest}`: 307 to a second server (the "storage host", another origin) that serves the
 *   bytes with `Range` support.
 * - Pushes: `POST /v2/{repo}/blobs/uploads/` -> 202 + `Location`, `PATCH` chunks with `Content-Range`,
 *   `PUT ...?digest=` (the digest is checked), `HEAD` blob checks, `PUT /v2/{repo}/manifests/{tag}` (referenced blobs
 *   must exist).
 *
 * Models are laid out as Ollama lays them out (weights, template, system, params, license, ... layers and an image
 * config). Knobs cut connections and corrupt blobs; every request is logged.
 */
import { createHash, randomUUID } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
export const OLLAMA_LAYER = {
  model: "application/vnd.ollama.image.model",
  template: "application/vnd.ollama.image.template",
  system: "application/vnd.ollama.image.system",
  params: "application/vnd.ollama.image.params",
  messages: "application/vnd.ollama.image.messages",
  license: "application/vnd.ollama.image.license",
  adapter: "application/vnd.ollama.image.adapter",
  projector: "application/vnd.ollama.image.projector",
} as const;

/** A model in Ollama's layer layout. Files are paths (read now) or bytes. */
export interface OllamaModelLayout {
  model: string | Buffer;
  template?: string;
  system?: string;
  params?: Record<string, unknown>;
  messages?: Array<{ role: string; content: string }>;
  license?: string;
  adapter?: string | Buffer;
  projector?: string | Buffer;
  /** Layers of other media types (e.g. one llmos does not know). */
  extraLayers?: Array<{ mediaType: string; content: Buffer }>;
  /** Manifest media type: Docker v2 schema 2 (Ollama's, the default) or the OCI image manifest. */
  manifestType?: "docker" | "oci";
}

export interface FakeRegistryRequest {
  server: "registry" | "storage";
  method: string;
  path: string;
  accept: string | undefined;
  range: string | undefined;
  authorization: string | undefined;
  status: number;
}

interface StoredManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

interface Grant {
  repository: string;
  actions: Set<string>;
}

function sha256(data: Buffer | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

function read(source: string | Buffer): Buffer {
  return typeof source === "string" ? fs.readFileSync(source) : source;
}

export class FakeRegistry {
  readonly requests: FakeRegistryRequest[] = [];
  /** Users who may push (and pull private repos): name -> password. */
  readonly users = new Map<string, string>([["pusher", "secret-password"]]);
  /** Pulls need a user too (a company registry). */
  privatePull = false;
  /** Destroy the storage connection after this many body bytes, `times` times. */
  dropAfter: { bytes: number; times: number } | undefined;
  /** Digests whose bytes the storage host serves with one byte flipped. */
  readonly corrupt = new Set<string>();
  /** Pause between 64 KiB chunks of storage bodies (ms). */
  chunkDelayMs = 0;
  /** Tokens issued by the token endpoint. */
  tokensIssued = 0;

  readonly #blobs = new Map<string, Buffer>();
  readonly #repos = new Map<string, Map<string, StoredManifest>>();
  readonly #tokens = new Map<string, Grant[]>();
  readonly #uploads = new Map<string, { repository: string; data: Buffer[]; size: number }>();

  private constructor(
    readonly registryServer: http.Server,
    readonly storageServer: http.Server,
  ) {}

  static async start(): Promise<FakeRegistry> {
    const holder: { r?: FakeRegistry } = {};
    const registryServer = http.createServer((req, res) => void holder.r!.#handle("registry", req, res));
    const storageServer = http.createServer((req, res) => void holder.r!.#handle("storage", req, res));
    const registry = new FakeRegistry(registryServer, storageServer);
    holder.r = registry;
    await Promise.all(
      [registryServer, storageServer].map((s) => new Promise<void>((r) => s.listen(0, "127.0.0.1", r))),
    );
    return registry;
  }

  /** `127.0.0.1:{port}`: the registry host as references write it. */
  get host(): string {
    return `127.0.0.1:${(this.registryServer.address() as AddressInfo).port}`;
  }

  get url(): string {
    return `http://${this.host}`;
  }

  get storageUrl(): string {
    return `http://127.0.0.1:${(this.storageServer.address() as AddressInfo).port}`;
  }

  /** Stores a blob; returns its digest. */
  addBlob(content: Buffer): string {
    const digest = sha256(content);
    this.#blobs.set(digest, content);
    return digest;
  }

  /** The stored bytes of a blob. */
  blob(digest: string): Buffer | undefined {
    return this.#blobs.get(digest);
  }

  /** The manifest stored under a tag or digest. */
  manifest(repository: string, reference: string): StoredManifest | undefined {
    return this.#repos.get(repository)?.get(reference);
  }

  /** Stores a manifest under a tag (and its digest). */
  setManifest(repository: string, tag: string, bytes: Buffer, mediaType: string): string {
    const digest = sha256(bytes);
    const repo = this.#repos.get(repository) ?? new Map<string, StoredManifest>();
    this.#repos.set(repository, repo);
    const stored = { bytes, mediaType, digest };
    repo.set(tag, stored);
    repo.set(digest, stored);
    return digest;
  }

  /** Publishes a model in Ollama's layout under `repository:tag`; returns the manifest digest and layers. */
  addModel(
    repository: string,
    tag: string,
    layout: OllamaModelLayout,
  ): { manifestDigest: string; layers: Array<{ mediaType: string; digest: string; size: number }> } {
    const contents: Array<{ mediaType: string; content: Buffer }> = [
      { mediaType: OLLAMA_LAYER.model, content: read(layout.model) },
    ];
    if (layout.adapter) contents.push({ mediaType: OLLAMA_LAYER.adapter, content: read(layout.adapter) });
    if (layout.projector) contents.push({ mediaType: OLLAMA_LAYER.projector, content: read(layout.projector) });
    if (layout.template !== undefined)
      contents.push({ mediaType: OLLAMA_LAYER.template, content: Buffer.from(layout.template) });
    if (layout.system !== undefined)
      contents.push({ mediaType: OLLAMA_LAYER.system, content: Buffer.from(layout.system) });
    if (layout.params)
      contents.push({ mediaType: OLLAMA_LAYER.params, content: Buffer.from(JSON.stringify(layout.params)) });
    if (layout.messages)
      contents.push({ mediaType: OLLAMA_LAYER.messages, content: Buffer.from(JSON.stringify(layout.messages)) });
    if (layout.license !== undefined)
      contents.push({ mediaType: OLLAMA_LAYER.license, content: Buffer.from(layout.license) });
    contents.push(...(layout.extraLayers ?? []));
    const layers = contents.map(({ mediaType, content }) => ({
      mediaType,
      digest: this.addBlob(content),
      size: content.length,
    }));
    const config = Buffer.from(
      JSON.stringify({
        model_format: "gguf",
        model_family: "llama",
        rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
      }),
    );
    const configDescriptor = {
      mediaType: "application/vnd.docker.container.image.v1+json",
      digest: this.addBlob(config),
      size: config.length,
    };
    const mediaType = layout.manifestType === "oci" ? OCI_MANIFEST : DOCKER_MANIFEST;
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, config: configDescriptor, layers }));
    return { manifestDigest: this.setManifest(repository, tag, bytes, mediaType), layers };
  }

  /** Logged requests of one server whose path matches. */
  requestsTo(server: "registry" | "storage", match?: RegExp): FakeRegistryRequest[] {
    return this.requests.filter((r) => r.server === server && (match === undefined || match.test(r.path)));
  }

  async close(): Promise<void> {
    for (const s of [this.registryServer, this.storageServer]) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }

  async #handle(server: "registry" | "storage", req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const entry: FakeRegistryRequest = {
      server,
      method: req.method ?? "GET",
      path: url.pathname,
      accept: req.headers.accept,
      range: req.headers.range,
      authorization: req.headers.authorization,
      status: 0,
    };
    this.requests.push(entry);
    const send = (status: number, body: string | Buffer = "", headers: Record<string, string> = {}): void => {
      entry.status = status;
      res.writeHead(status, { "content-length": String(Buffer.byteLength(body)), ...headers });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    try {
      if (server === "storage") return await this.#storage(req, res, entry, url);
      if (url.pathname === "/token") return this.#token(req, url, send);
      return await this.#registry(req, url, send);
    } catch (error) {
      if (!res.headersSent) send(500, JSON.stringify({ errors: [{ code: "UNKNOWN", message: String(error) }] }));
      else res.destroy();
    }
  }

  #user(req: http.IncomingMessage): string | undefined {
    const m = /^Basic (.+)$/.exec(req.headers.authorization ?? "");
    if (!m) return undefined;
    const [user, ...rest] = Buffer.from(m[1]!, "base64").toString("utf8").split(":");
    return user && this.users.get(user) === rest.join(":") ? user : undefined;
  }

  #token(req: http.IncomingMessage, url: URL, send: (s: number, b?: string, h?: Record<string, string>) => void): void {
    const basic = req.headers.authorization !== undefined;
    const user = this.#user(req);
    if (basic && !user)
      return send(401, JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "bad credentials" }] }));
    const grants: Grant[] = [];
    for (const scope of url.searchParams.getAll("scope")) {
      const m = /^repository:([^:]+):(.+)$/.exec(scope);
      if (!m) continue;
      const wanted = m[2]!.split(",");
      const actions = new Set(wanted.filter((a) => (a === "pull" ? user || !this.privatePull : a === "push" && user)));
      grants.push({ repository: m[1]!, actions });
    }
    const token = randomUUID();
    this.#tokens.set(token, grants);
    this.tokensIssued++;
    send(200, JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }), {
      "content-type": "application/json",
    });
  }

  #allowed(req: http.IncomingMessage, repository: string, action: string): boolean {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? "");
    const grants = m ? this.#tokens.get(m[1]!) : undefined;
    return Boolean(grants?.some((g) => g.repository === repository && g.actions.has(action)));
  }

  async #registry(
    req: http.IncomingMessage,
    url: URL,
    send: (s: number, b?: string | Buffer, h?: Record<string, string>) => void,
  ): Promise<void> {
    const json = { "content-type": "application/json" };
    const error = (status: number, code: string, message: string): void =>
      send(status, JSON.stringify({ errors: [{ code, message }] }), json);
    const challenge = (repository: string, push: boolean): void =>
      send(401, JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }), {
        ...json,
        "www-authenticate": `Bearer realm="${this.url}/token",service="fake-registry",scope="repository:${repository}:${push ? "pull,push" : "pull"}"`,
      });
    if (url.pathname === "/v2/" || url.pathname === "/v2") {
      return /^Bearer /.test(req.headers.authorization ?? "") ? send(200, "{}", json) : challenge("", false);
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs\/uploads|blobs)\/(.*)$/.exec(url.pathname);
    if (!m) return error(404, "NOT_FOUND", "no such route");
    const [, repository, kind, rest] = m as unknown as [string, string, string, string];
    const method = req.method ?? "GET";
    const push = method !== "GET" && method !== "HEAD";
    if (!this.#allowed(req, repository, push ? "push" : "pull")) return challenge(repository, push);

    if (kind === "manifests") {
      if (method === "PUT") return this.#putManifest(req, repository, rest, send, error);
      const repo = this.#repos.get(repository);
      if (!repo) return error(404, "NAME_UNKNOWN", "repository name not known to registry");
      const stored = repo.get(rest);
      if (!stored) return error(404, "MANIFEST_UNKNOWN", "manifest unknown");
      const accept = (req.headers.accept ?? "").split(",").map((s) => s.split(";")[0]!.trim());
      if (!accept.includes(stored.mediaType) && !accept.includes("*/*")) {
        return error(
          404,
          "MANIFEST_UNKNOWN",
          `manifest found, but the accept header does not support ${stored.mediaType}`,
        );
      }
      return send(200, stored.bytes, { "content-type": stored.mediaType, "docker-content-digest": stored.digest });
    }
    if (kind === "blobs") {
      const content = this.#blobs.get(rest);
      if (!content) return error(404, "BLOB_UNKNOWN", "blob unknown to registry");
      return send(307, "", { location: `${this.storageUrl}/blobs/${rest.slice(7)}?X-Signature=${randomUUID()}` });
    }
    // Uploads.
    if (method === "POST" && rest === "") {
      const id = randomUUID();
      this.#uploads.set(id, { repository, data: [], size: 0 });
      return send(202, "", {
        location: `/v2/${repository}/blobs/uploads/${id}`,
        "docker-upload-uuid": id,
        range: "0-0",
      });
    }
    const upload = this.#uploads.get(rest);
    if (!upload || upload.repository !== repository) return error(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown");
    const body = await readBody(req);
    if (method === "PATCH") {
      const range = /^(\d+)-(\d+)$/.exec(String(req.headers["content-range"] ?? ""));
      if (range && (Number(range[1]) !== upload.size || Number(range[2]) !== upload.size + body.length - 1)) {
        return error(416, "BLOB_UPLOAD_INVALID", "content range out of order");
      }
      upload.data.push(body);
      upload.size += body.length;
      return send(202, "", {
        location: `/v2/${repository}/blobs/uploads/${rest}`,
        range: `0-${upload.size - 1}`,
        "docker-upload-uuid": rest,
      });
    }
    if (method === "PUT") {
      upload.data.push(body);
      const content = Buffer.concat(upload.data);
      const digest = url.searchParams.get("digest") ?? "";
      if (sha256(content) !== digest)
        return error(400, "DIGEST_INVALID", "provided digest did not match uploaded content");
      this.#uploads.delete(rest);
      this.#blobs.set(digest, content);
      return send(201, "", { location: `/v2/${repository}/blobs/${digest}`, "docker-content-digest": digest });
    }
    return error(405, "UNSUPPORTED", "method not allowed");
  }

  async #putManifest(
    req: http.IncomingMessage,
    repository: string,
    reference: string,
    send: (s: number, b?: string | Buffer, h?: Record<string, string>) => void,
    error: (status: number, code: string, message: string) => void,
  ): Promise<void> {
    const bytes = await readBody(req);
    const mediaType = String(req.headers["content-type"] ?? "");
    let manifest: { config?: { digest?: string }; layers?: Array<{ digest?: string }> };
    try {
      manifest = JSON.parse(bytes.toString("utf8")) as typeof manifest;
    } catch {
      return error(400, "MANIFEST_INVALID", "manifest invalid");
    }
    const missing = [manifest.config, ...(manifest.layers ?? [])].find((d) => !d?.digest || !this.#blobs.has(d.digest));
    if (missing) return error(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry");
    const digest = this.setManifest(repository, reference, bytes, mediaType);
    send(201, "", { location: `/v2/${repository}/manifests/${digest}`, "docker-content-digest": digest });
  }

  async #storage(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    entry: FakeRegistryRequest,
    url: URL,
  ): Promise<void> {
    const m = /^\/blobs\/([0-9a-f]{64})$/.exec(url.pathname);
    let content = m ? this.#blobs.get(`sha256:${m[1]}`) : undefined;
    const finish = (status: number, headers: Record<string, string> = {}): void => {
      entry.status = status;
      res.writeHead(status, headers);
      res.end();
    };
    if (!content || !url.searchParams.get("X-Signature")) return finish(404);
    if (this.corrupt.has(`sha256:${m![1]}`)) {
      content = Buffer.from(content);
      content[content.length >> 1] = content[content.length >> 1]! ^ 0xff;
    }
    const headers: Record<string, string> = {
      "accept-ranges": "bytes",
      etag: `"${m![1]}"`,
      "content-type": "application/octet-stream",
    };
    let status = 200;
    let body = content;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), content.length - 1) : content.length - 1;
      if (start >= content.length || start > end) return finish(416, { "content-range": `bytes */${content.length}` });
      status = 206;
      body = content.subarray(start, end + 1);
      headers["content-range"] = `bytes ${start}-${end}/${content.length}`;
    }
    headers["content-length"] = String(body.length);
    entry.status = status;
    res.writeHead(status, headers);
    if (req.method === "HEAD") return void res.end();
    const drop = this.dropAfter && this.dropAfter.times > 0 ? this.dropAfter : undefined;
    if (drop) drop.times--;
    let sent = 0;
    while (sent < body.length) {
      if (res.destroyed) return;
      let n = Math.min(64 * 1024, body.length - sent);
      if (drop && sent + n >= drop.bytes) n = drop.bytes - sent;
      if (n > 0) {
        const ok = res.write(body.subarray(sent, sent + n));
        sent += n;
        if (!ok) await new Promise((r) => res.once("drain", r));
      }
      if (drop && sent >= drop.bytes) {
        await new Promise((r) => setTimeout(r, 20));
        res.socket?.destroy();
        return;
      }
      if (this.chunkDelayMs > 0) await new Promise((r) => setTimeout(r, this.chunkDelayMs));
    }
    res.end();
  }
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 256 * 1024 * 1024) throw new Error("body too large");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
