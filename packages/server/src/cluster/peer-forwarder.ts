/**
 * The data path: a request this node received runs on another node. It is sent there as a signed peer call and the
 * answer comes back byte for byte (OpenAI and Ollama APIs alike, streamed or not).
 *
 * Failover: until the chosen node has sent the first bytes of its answer, nothing has reached the client, so when
 * that node dies (its connection fails, or membership sees its session end or its heartbeat stop) the request is
 * dispatched again to the next best node, at most twice. The abandoned attempt's connection is closed, which
 * cancels it there; each attempt carries its own fence (`<request id>:<attempt>`), which a node accepts once.
 * Once bytes have flowed the answer is committed: a node lost mid-stream ends the stream with a `node_lost` error.
 */
import { randomUUID } from "node:crypto";
import { LlmosError } from "../errors.js";
import type { Logger } from "../telemetry/logger.js";
import type { ClusterNode } from "./node-capacity.js";
import { signPeerCall } from "./peer-auth.js";
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

/** An answer whose first bytes arrived: headers and the rest of the body to pass on. */
export interface CommittedAnswer {
  node: string;
  status: number;
  headers: Headers;
  first: Uint8Array;
  rest: ReadableStreamDefaultReader<Uint8Array>;
  done: () => void;
}

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
      const body = input.body === undefined ? undefined : JSON.stringify(input.body);
      const headers = signPeerCall(this.secret, {
        method: input.method,
        path: input.path,
        node: this.self,
        time: Date.now(),
        fence,
        keyId: input.keyId,
        forwardedFor: input.clientAddress,
      });
      const res = await fetch(target.url + input.path, {
        method: input.method,
        headers: { ...headers, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
        ...(body !== undefined ? { body } : {}),
        signal: abort.signal,
      });
      const reader = res.body!.getReader();
      const chunk = await reader.read();
      clearInterval(watch);
      return {
        node: target.name,
        status: res.status,
        headers: res.headers,
        first: chunk.value ?? new Uint8Array(),
        rest: reader,
        done: release,
      };
    } catch (error) {
      release();
      throw error;
    }
  }
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
