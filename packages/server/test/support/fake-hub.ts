/**
 * A fake Hugging Face Hub for tests: real HTTP servers on 127.0.0.1 that answer the way the Hub does.
 *
 * - Hub server: `GET /api/models/{owner}/{repo}/tree/{rev}[?recursive=true]` (JSON listing with `type`, `path`,
 *   `size`, `oid`, `lfs: {oid, size, pointerSize}` for LFS files), and `HEAD|GET /{owner}/{repo}/resolve/{rev}/{path}`
 *   answering 302 to the CDN with `x-linked-etag` (the sha256 in quotes), `x-linked-size` and `ETag` (non-LFS files
 *   are served directly).
 * - CDN server (another origin, so tests can check the token is not forwarded): `/cdn/{sha256}/{name}` with
 *   `Range` support (206 + Content-Range), and `/files/{name}` for plain-URL pulls.
 *
 * Knobs simulate gated repos, 5xx answers, dropped connections, corrupt bodies, servers that ignore Range and slow
 * links; every request is logged.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";

/** A repo of the fake Hub. Files are local paths (read at start) or buffers. */
export interface FakeRepo {
  files: Record<string, string | Buffer>;
  /** Requires `Authorization: Bearer <token>` (401 without, 403 with a wrong one). */
  gated?: boolean;
  /** Revisions that exist. Default ["main"]. */
  revisions?: string[];
}

/** One logged request. */
export interface FakeHubRequest {
  server: "hub" | "cdn";
  method: string;
  path: string;
  range: string | undefined;
  authorization: string | undefined;
  status: number;
}

/** A rule that answers `status` instead of the real response, `times` times, for paths matching `match`. */
export interface FailureRule {
  match: RegExp;
  status: number;
  times: number;
  /** Only for this method (default any). */
  method?: string;
}

interface StoredFile {
  content: Buffer;
  sha256: string;
  lfs: boolean;
}

export class FakeHub {
  readonly requests: FakeHubRequest[] = [];
  /** Answer with an error status n times (see {@link FailureRule}). */
  readonly failures: FailureRule[] = [];
  /** Destroy the connection after this many body bytes of a CDN response, `times` times. */
  dropAfter: { bytes: number; times: number } | undefined;
  /** sha256s whose CDN body is served with one byte flipped (same length, so only the hash can tell). */
  readonly corrupt = new Set<string>();
  /** The CDN answers 200 with the whole body to ranged requests. */
  ignoreRange = false;
  /** CDN bodies are written in chunks of this size... */
  chunkSize = 64 * 1024;
  /** ...with this pause between chunks (ms). */
  chunkDelayMs = 0;
  /** The Hub token that opens gated repos. */
  token = "hf_test_token";

  readonly #repos = new Map<string, { repo: FakeRepo; files: Map<string, StoredFile> }>();
  readonly #blobs = new Map<string, StoredFile>();
  readonly #plain = new Map<string, StoredFile>();

  private constructor(
    readonly hubServer: http.Server,
    readonly cdnServer: http.Server,
  ) {}

  /** Starts both servers on 127.0.0.1 with random ports. */
  static async start(repos: Record<string, FakeRepo> = {}): Promise<FakeHub> {
    // The servers' handlers reach the hub through a holder: it is created after them.
    const holder: { hub?: FakeHub } = {};
    const hubServer = http.createServer((req, res) => void holder.hub!.#handle("hub", req, res));
    const cdnServer = http.createServer((req, res) => void holder.hub!.#handle("cdn", req, res));
    const hub = new FakeHub(hubServer, cdnServer);
    holder.hub = hub;
    for (const [id, repo] of Object.entries(repos)) hub.addRepo(id, repo);
    await Promise.all([hubServer, cdnServer].map((s) => new Promise<void>((r) => s.listen(0, "127.0.0.1", r))));
    return hub;
  }

  /** Hub base URL (what `LLMOS_HF_ENDPOINT` would be). */
  get url(): string {
    return `http://127.0.0.1:${(this.hubServer.address() as AddressInfo).port}`;
  }

  /** CDN base URL. */
  get cdnUrl(): string {
    return `http://127.0.0.1:${(this.cdnServer.address() as AddressInfo).port}`;
  }

  /** Adds (or replaces) a repo. */
  addRepo(id: string, repo: FakeRepo): void {
    const files = new Map<string, StoredFile>();
    for (const [p, source] of Object.entries(repo.files)) {
      const content = typeof source === "string" ? fs.readFileSync(source) : source;
      const file = { content, sha256: sha256(content), lfs: /\.gguf$/i.test(p) };
      files.set(p, file);
      this.#blobs.set(file.sha256, file);
    }
    this.#repos.set(id, { repo, files });
  }

  /** Serves a file at `{cdnUrl}/files/{name}` (a plain URL, no redirect); returns its URL. */
  addPlainFile(name: string, source: string | Buffer): string {
    const content = typeof source === "string" ? fs.readFileSync(source) : source;
    const file = { content, sha256: sha256(content), lfs: true };
    this.#plain.set(name, file);
    this.#blobs.set(file.sha256, file);
    return `${this.cdnUrl}/files/${encodeURIComponent(name)}`;
  }

  /** Logged requests of one server whose path matches. */
  requestsTo(server: "hub" | "cdn", match?: RegExp): FakeHubRequest[] {
    return this.requests.filter((r) => r.server === server && (match === undefined || match.test(r.path)));
  }

  async close(): Promise<void> {
    for (const s of [this.hubServer, this.cdnServer]) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }

  async #handle(server: "hub" | "cdn", req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const entry: FakeHubRequest = {
      server,
      method: req.method ?? "GET",
      path: decodeURIComponent(url.pathname),
      range: req.headers.range,
      authorization: req.headers.authorization,
      status: 0,
    };
    this.requests.push(entry);
    const send = (status: number, body: string | Buffer = "", headers: Record<string, string> = {}): void => {
      entry.status = status;
      res.writeHead(status, headers);
      res.end(req.method === "HEAD" ? undefined : body);
    };
    const rule = this.failures.find(
      (f) => f.times > 0 && f.match.test(entry.path) && (f.method === undefined || f.method === entry.method),
    );
    if (rule) {
      rule.times--;
      return send(rule.status, JSON.stringify({ error: "simulated failure" }), { "content-type": "application/json" });
    }
    try {
      if (server === "hub") return this.#hub(req, entry, url, send);
      return await this.#cdn(req, res, entry, send);
    } catch (error) {
      if (!res.headersSent) send(500, String(error));
      else res.destroy();
    }
  }

  #hub(
    req: http.IncomingMessage,
    entry: FakeHubRequest,
    url: URL,
    send: (status: number, body?: string | Buffer, headers?: Record<string, string>) => void,
  ): void {
    const tree = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)(?:\/(.*))?$/.exec(entry.path);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(entry.path);
    const repoId = tree?.[1] ?? resolve?.[1];
    const found = repoId ? this.#repos.get(repoId) : undefined;
    const json = { "content-type": "application/json" };
    if (!found) {
      return send(404, JSON.stringify({ error: "Repository not found" }), { ...json, "x-error-code": "RepoNotFound" });
    }
    if (found.repo.gated) {
      if (!req.headers.authorization) {
        return send(401, JSON.stringify({ error: `Access to model ${repoId} is restricted.` }), {
          ...json,
          "x-error-code": "GatedRepo",
        });
      }
      if (req.headers.authorization !== `Bearer ${this.token}`) {
        return send(403, JSON.stringify({ error: "Access denied" }), { ...json, "x-error-code": "GatedRepo" });
      }
    }
    const rev = (tree ?? resolve)![2]!;
    if (!(found.repo.revisions ?? ["main"]).includes(rev)) {
      return send(404, JSON.stringify({ error: "Invalid rev id" }), { ...json, "x-error-code": "RevisionNotFound" });
    }
    if (tree) {
      const recursive = /^(1|true)$/.test(url.searchParams.get("recursive") ?? "");
      const prefix = tree[3] ? `${tree[3].replace(/\/$/, "")}/` : "";
      const out: unknown[] = [];
      const dirs = new Set<string>();
      for (const [p, f] of found.files) {
        if (!p.startsWith(prefix)) continue;
        const rest = p.slice(prefix.length).split("/");
        for (let i = 1; i < rest.length; i++) dirs.add(prefix + rest.slice(0, i).join("/"));
        if (!recursive && rest.length > 1) continue;
        const item: Record<string, unknown> = { type: "file", oid: gitOid(f), size: f.content.length, path: p };
        if (f.lfs) item.lfs = { oid: f.sha256, size: f.content.length, pointerSize: 134 };
        out.push(item);
      }
      for (const d of dirs) {
        if (recursive || !d.slice(prefix.length).includes("/"))
          out.push({ type: "directory", oid: sha256(Buffer.from(d)).slice(0, 40), size: 0, path: d });
      }
      return send(200, JSON.stringify(out), json);
    }
    const file = found.files.get(resolve![3]!);
    if (!file)
      return send(404, JSON.stringify({ error: "Entry not found" }), { ...json, "x-error-code": "EntryNotFound" });
    if (!file.lfs) {
      return send(200, file.content, { "content-length": String(file.content.length), etag: `"${gitOid(file)}"` });
    }
    const name = encodeURIComponent(resolve![3]!.split("/").pop()!);
    return send(302, "", {
      location: `${this.cdnUrl}/cdn/${file.sha256}/${name}`,
      "x-linked-etag": `"${file.sha256}"`,
      "x-linked-size": String(file.content.length),
      etag: `"${file.sha256}"`,
      "x-repo-commit": "0".repeat(40),
    });
  }

  async #cdn(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    entry: FakeHubRequest,
    send: (status: number, body?: string | Buffer, headers?: Record<string, string>) => void,
  ): Promise<void> {
    const cdn = /^\/cdn\/([0-9a-f]{64})\//.exec(entry.path);
    const plain = /^\/files\/(.+)$/.exec(entry.path);
    const file = cdn ? this.#blobs.get(cdn[1]!) : plain ? this.#plain.get(plain[1]!) : undefined;
    if (!file) return send(404, "not found");
    let content = file.content;
    if (this.corrupt.has(file.sha256)) {
      content = Buffer.from(content);
      content[content.length >> 1] = content[content.length >> 1]! ^ 0xff;
    }
    const headers: Record<string, string> = {
      "accept-ranges": "bytes",
      etag: `"${file.sha256}"`,
      "content-type": "application/octet-stream",
    };
    let status = 200;
    let body = content;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    if (range && !this.ignoreRange) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), content.length - 1) : content.length - 1;
      if (start >= content.length || start > end) {
        return send(416, "", { "content-range": `bytes */${content.length}` });
      }
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
      let n = Math.min(this.chunkSize, body.length - sent);
      if (drop && sent + n >= drop.bytes) n = drop.bytes - sent;
      if (n > 0) {
        const ok = res.write(body.subarray(sent, sent + n));
        sent += n;
        if (!ok) await new Promise((r) => res.once("drain", r));
      }
      if (drop && sent >= drop.bytes) {
        // Give the bytes a moment to leave, then cut the connection mid-body.
        await new Promise((r) => setTimeout(r, 20));
        res.socket?.destroy();
        return;
      }
      if (this.chunkDelayMs > 0) await new Promise((r) => setTimeout(r, this.chunkDelayMs));
    }
    res.end();
  }
}

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Git blob id (sha1 of "blob <size>\0" + content), as the Hub's `oid` of non-LFS files. */
function gitOid(file: StoredFile): string {
  return createHash("sha1").update(`blob ${file.content.length}\0`).update(file.content).digest("hex");
}
