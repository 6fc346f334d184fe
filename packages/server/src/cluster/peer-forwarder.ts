/**
 * The data path: a request this node received runs on another node. It is sent there as a signed peer call and the
 * answer comes back byte for byte (OpenAI and Ollama APIs alike, streamed or not).
 *
 * Failover: until the chosen node has sent the first bytes of its answer, nothing has reached the client, so when
 * that node dies (its connection fails, or membership sees its session end or its heartbeat stop) the request is
 * dispatched again to the next best node, at most twice. The abandoned attempt's connection is closed, which
 * cancels it there; each attempt carries its own fence (`<request id>:<attempt>`), which a node accepts once.
 * Once bytes have flowed the answer is committed: a node lost mid-stream ends the stream with a `node_lost` error.
 *
 * Peer calls go over node:http with keep-alive agents (one connection pool per peer, reused across requests):
 * undici's fetch costs 2-3 ms more per request on loopback (docs/performance.md), which a forwarded request would
 * pay on top of the direct one.
 */
import { randomUUID } from "node:crypto";
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { LlmosError } from "../errors.js";
import type { Logger } from "../telemetry/logger.js";
import type { ClusterNode } from "./node-capacity.js";
import { peerBody, signPeerCall } from "./peer-auth.js";
import type { RequestRouter, RoutedRequest } from "./request-router.js";

/** Re-dispatches after the first attempt. */
export const MAX_REDISPATCH = 2;
/** How often a waiting attempt checks that its node is still alive. */
const LIVENESS_POLL_MS = 250;

export interface ForwardInput {
  method: string;
  /** Path and query as received. */
  path: string;
  body: unknown;
  keyId: string | undefined;
  clientAddress: string;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

/** The rest of a forwarded answer's body, chunk by chunk (throws when the node is lost mid-answer). */
export interface AnswerReader {
  read(): Promise<{ done: true; value?: undefined } | { done: false; value: Uint8Array }>;
}

/** An answer whose first bytes arrived: headers and the rest of the body to pass on. */
export interface CommittedAnswer {
  node: string;
  status: number;
  headers: Headers;
  first: Uint8Array;
  rest: AnswerReader;
  done: () => void;
}

/** Keep-alive connection pools for peer calls (sockets are reused per peer host). */
const AGENTS = {
  "http:": new http.Agent({ keepAlive: true, maxSockets: 256 }),
  "https:": new https.Agent({ keepAlive: true, maxSockets: 256 }),
};

export class PeerForwarder {
  constructor(
    private readonly router: RequestRouter,
    private readonly self: string,
    private readonly secret: string,
    private readonly logger: Logger,
  ) {}

  /**
   * Sends `input` to `first.target`, re-dispatching on failure before the first byte. Returns undefined when the
   * best node became this one (the caller runs the request itself).
   */
  async forward(input: ForwardInput, first: RoutedRequest): Promise<CommittedAnswer | undefined> {
    const id = randomUUID();
    const failed = new Set<string>();
    let routed: RoutedRequest | undefined = first;
    for (let attempt = 1; attempt <= 1 + MAX_REDISPATCH; attempt++) {
      if (!routed || routed.decision.kind !== "node") break;
      if (routed.decision.node === this.self || !routed.target) return undefined;
      const target = routed.target;
      try {
        return await this.attempt(input, target, `${id}:${attempt}`);
      } catch (error) {
        if (input.signal.aborted) throw error;
        this.logger.warn({ node: target.name, attempt, err: error }, "forwarded request lost before its answer began");
        failed.add(target.name);
        routed = this.router.route(input.body, failed);
      }
    }
    if (routed?.decision.kind === "node" && routed.decision.node === this.self) return undefined;
    throw new LlmosError("unavailable", `no node could run the request (tried ${[...failed].join(", ")})`);
  }

  /**
   * Has `target` load `model` (a drained node handing its models over): a signed Ollama load call (`/api/generate`
   * without a prompt), answered once the model is ready there. Throws when the node cannot load it.
   */
  async load(target: ClusterNode, model: string, timeoutMs = 120_000): Promise<void> {
    const path = "/api/generate";
    const body = peerBody({ model, prompt: "" });
    const headers = signPeerCall(this.secret, {
      method: "POST",
      path,
      node: this.self,
      time: Date.now(),
      fence: `load:${randomUUID()}`,
      keyId: undefined,
      forwardedFor: "127.0.0.1",
      body,
    });
    const res = await peerRequest(new URL(target.url + path), "POST", headers, body, AbortSignal.timeout(timeoutMs));
    let text = "";
    for await (const chunk of res) text += String(chunk);
    if ((res.statusCode ?? 500) >= 300)
      throw new LlmosError("unavailable", `node ${target.name} did not load ${model}: ${text.slice(0, 300)}`);
  }

  private async attempt(input: ForwardInput, target: ClusterNode, fence: string): Promise<CommittedAnswer> {
    const done = this.router.begin(target.name);
    const abort = new AbortController();
    const onClientGone = () => abort.abort(new Error("the client went away"));
    input.signal.addEventListener("abort", onClientGone, { once: true });
    // Given up on when membership sees the node gone (session ended, or no heartbeat past dead-after).
    const watch = setInterval(() => {
      if (!this.router.healthy(target.name)) abort.abort(new Error(`node ${target.name} is gone`));
    }, LIVENESS_POLL_MS);
    const release = () => {
      clearInterval(watch);
      input.signal.removeEventListener("abort", onClientGone);
      done();
    };
    try {
      const body = peerBody(input.body);
      const headers = signPeerCall(this.secret, {
        method: input.method,
        path: input.path,
        node: this.self,
        time: Date.now(),
        fence,
        keyId: input.keyId,
        forwardedFor: input.clientAddress,
        body,
      });
      const res = await peerRequest(new URL(target.url + input.path), input.method, headers, body, abort.signal);
      const chunks = res[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      const chunk = await chunks.next();
      clearInterval(watch);
      return {
        node: target.name,
        status: res.statusCode ?? 502,
        headers: headersOf(res),
        first: chunk.done ? new Uint8Array() : chunk.value,
        rest: {
          read: async () => {
            if (chunk.done) return { done: true };
            const next = await chunks.next();
            return next.done ? { done: true } : { done: false, value: next.value };
          },
        },
        done: release,
      };
    } catch (error) {
      release();
      throw error;
    }
  }
}

/** One signed peer call over a keep-alive connection; resolves with the answer once its headers arrived. */
function peerRequest(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  const client = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(
      url,
      {
        method,
        agent: AGENTS[url.protocol as keyof typeof AGENTS],
        headers: {
          ...headers,
          ...(body !== undefined
            ? { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) }
            : {}),
        },
        signal,
      },
      resolve,
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** The answer's headers as a fetch `Headers` (what the HTTP layer passes on). */
function headersOf(res: IncomingMessage): Headers {
  const out = new Headers();
  for (const [name, value] of Object.entries(res.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) out.append(name, v);
  }
  return out;
}

/** Fences a node accepted, kept for the peer-signature window: an attempt runs at most once per node. */
export class FenceRegistry {
  private readonly seen = new Map<string, number>();

  constructor(private readonly keepMs = 120_000) {}

  /** False when `fence` was already claimed. */
  claim(fence: string, now = Date.now()): boolean {
    for (const [f, at] of this.seen) {
      if (now - at <= this.keepMs) break;
      this.seen.delete(f);
    }
    if (this.seen.has(fence)) return false;
    this.seen.set(fence, now);
    return true;
  }
}
