import http from "node:http";
import type { AddressInfo } from "node:net";

/** One request the mock received. */
export interface Received {
  method: string;
  /** Raw request target, exactly as sent (path still encoded). */
  url: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

/** What a route handler gets: the request plus helpers to answer in the daemon's formats. */
export interface RouteContext {
  req: Received;
  res: http.ServerResponse;
  /** Answers JSON with an `x-request-id` header. */
  json(status: number, body: unknown, headers?: Record<string, string>): void;
  /** Starts an SSE response and returns a writer. */
  sse(): { data(payload: unknown): void; done(): void };
  /** Starts an NDJSON response and returns a writer. */
  ndjson(): { line(payload: unknown): void; end(): void };
  /** How many times this route was hit so far (1 on the first call). */
  hit: number;
}

export type Handler = (ctx: RouteContext) => void | Promise<void>;

/**
 * A small real HTTP server speaking the llmos wire contract, for testing the SDK before (and besides) the real
 * daemon. Routes are `"METHOD /path"` keys matched on the raw (still encoded) path.
 */
export class MockDaemon {
  readonly received: Received[] = [];
  readonly routes = new Map<string, Handler>();
  readonly hits = new Map<string, number>();
  private server: http.Server | undefined;
  private sockets = new Set<import("node:net").Socket>();
  private nextId = 1;
  url = "";

  on(route: string, handler: Handler): this {
    this.routes.set(route, handler);
    return this;
  }

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const received: Received = {
      method: req.method ?? "GET",
      url: req.url ?? "/",
      headers: req.headers,
      body: text ? JSON.parse(text) : undefined,
    };
    this.received.push(received);
    const requestId = `req-${this.nextId++}`;
    res.setHeader("x-request-id", requestId);
    const key = `${received.method} ${received.url.split("?")[0]}`;
    const handler = this.routes.get(key);
    const hit = (this.hits.get(key) ?? 0) + 1;
    this.hits.set(key, hit);
    const ctx: RouteContext = {
      req: received,
      res,
      hit,
      json(status, body, headers = {}) {
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(JSON.stringify(body));
      },
      sse() {
        res.writeHead(200, { "content-type": "text/event-stream" });
        return {
          data: (payload) => res.write(`data: ${JSON.stringify(payload)}\n\n`),
          done: () => res.end("data: [DONE]\n\n"),
        };
      },
      ndjson() {
        res.writeHead(200, { "content-type": "application/x-ndjson" });
        return { line: (payload) => res.write(`${JSON.stringify(payload)}\n`), end: () => res.end() };
      },
    };
    if (!handler) {
      ctx.json(404, { error: { code: "not_found", message: `no route ${key}` } });
      return;
    }
    await handler(ctx);
  }
}
