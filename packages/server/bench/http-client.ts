/**
 * The benchmark's HTTP client: node:http with a keep-alive agent, as load generators (wrk, autocannon) use, so
 * that the figures measure the daemon rather than the client. undici's `fetch` costs 2-3 ms more per request on
 * this machine, which alone is a fifth of a 64-token request on stories260K (docs/performance.md).
 */
import http from "node:http";

const sharedAgent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** A keep-alive agent of one's own, for a server that goes away (destroy it then: its sockets are dead). */
export function newAgent(): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: 256 });
}

/** A response whose body is read once: streamed, as text or as JSON. */
export interface BenchResponse {
  status: number;
  ok: boolean;
  /** The node that ran it (cluster mode's `x-llmos-node`), if the answer says. */
  node: string | undefined;
  /** The body as it arrives. */
  body: AsyncIterable<Buffer>;
  text(): Promise<string>;
  json<T = unknown>(): Promise<T>;
}

/** POST a JSON body (GET when `body` is undefined and `method` says so). */
export function request(
  url: string,
  body?: unknown,
  method = "POST",
  agent: http.Agent = sharedAgent,
): Promise<BenchResponse> {
  const u = new URL(url);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method,
        agent,
        headers:
          payload === undefined
            ? {}
            : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const text = async () => {
          let out = "";
          for await (const chunk of res) out += (chunk as Buffer).toString();
          return out;
        };
        resolve({
          status,
          ok: status >= 200 && status < 300,
          node: typeof res.headers["x-llmos-node"] === "string" ? res.headers["x-llmos-node"] : undefined,
          body: res,
          text,
          json: async <T>() => JSON.parse(await text()) as T,
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}
