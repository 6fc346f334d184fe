/**
 * Turns what the nodes published (membership.ts) and what this node sent since (requests in flight, placements not
 * yet in a heartbeat) into the routing decision's input, and applies `decideRoute`. Every live node is a candidate
 * once some node has the model (a node chosen without it fetches the blobs from a peer: blob-fetcher.ts); a model
 * that no node has is left to the receiving node (which answers 404 or pulls it as it would alone).
 */
import { canonicalModelName } from "../store/names.js";
import type { ClusterMembership } from "./membership.js";
import { isHealthy, type MembershipTimes } from "./membership-decisions.js";
import type { CapacityModel, ClusterNode } from "./node-capacity.js";
import { prefixChain, promptTextOf } from "./prefix-chain.js";
import { decideRoute, type RouteDecision, type RoutingNode } from "./routing.js";

/** How long a placement decided here stands in for the heartbeat that will show it. */
const PROVISIONAL_MS = 5000;

export interface RoutedRequest {
  /** Canonical model name. */
  model: string;
  chain: string[];
  decision: RouteDecision;
  /** The chosen node's row (undefined for the deciding node itself or no decision). */
  target: ClusterNode | undefined;
}

export class RequestRouter {
  private readonly inflight = new Map<string, number>();
  private readonly provisional = new Map<string, Map<string, { until: number; bytes: number }>>();

  constructor(
    private readonly membership: ClusterMembership,
    private readonly self: string,
    private readonly times: MembershipTimes,
    private readonly now: () => number = Date.now,
  ) {}

  /** Where a request with `body` runs; `exclude` lists nodes that already failed it. */
  route(body: unknown, exclude: ReadonlySet<string> = new Set()): RoutedRequest | undefined {
    const raw = (body as { model?: unknown } | null)?.model;
    if (typeof raw !== "string" || raw.length === 0) return undefined;
    let model: string;
    try {
      model = canonicalModelName(raw);
    } catch {
      return undefined; // an invalid name: the receiving node answers 400 itself
    }
    const nodes = this.membership.nodes().filter((n) => n.state === "up" || n.state === "draining");
    const stored = nodes.flatMap((n) => n.capacity.stored.filter((s) => s.name === model));
    const holders = nodes.filter(
      (n) => n.capacity.stored.some((s) => s.name === model) || n.capacity.models.some((m) => m.name === model),
    );
    if (holders.length === 0) return undefined;
    const size = Math.max(0, ...stored.map((s) => s.sizeBytes));
    const chain = prefixChain(promptTextOf(body));
    const routing = nodes.map((n) => this.routingNode(n, model, exclude));
    const decision = decideRoute({ model, estimatedBytes: Math.ceil(size * 1.2), minimumBytes: size, chain }, routing);
    const target = decision.kind === "node" ? nodes.find((n) => n.name === decision.node) : undefined;
    if (decision.kind === "node" && decision.reason !== "loaded") this.placeProvisionally(decision.node, model, size);
    return { model, chain, decision, target };
  }

  /** Counts a request sent to `node` until `done` is called. */
  begin(node: string): () => void {
    this.inflight.set(node, (this.inflight.get(node) ?? 0) + 1);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.inflight.set(node, Math.max(0, (this.inflight.get(node) ?? 1) - 1));
    };
  }

  /** True while `node` is a healthy member (a forwarded request waiting there keeps waiting). */
  healthy(node: string): boolean {
    const n = this.membership.nodes().find((x) => x.name === node);
    return (
      n !== undefined &&
      isHealthy(
        { name: n.name, state: n.state, epoch: n.epoch, heartbeatAgeMs: n.heartbeatAgeMs, lockHeld: n.lockHeld },
        // A node is given up on only once it is past the dead-after interval (or its session ended).
        { heartbeatMs: this.times.deadAfterMs / 2, deadAfterMs: this.times.deadAfterMs },
      )
    );
  }

  private routingNode(n: ClusterNode, model: string, exclude: ReadonlySet<string>): RoutingNode {
    const healthy = isHealthy(
      { name: n.name, state: n.state, epoch: n.epoch, heartbeatAgeMs: n.heartbeatAgeMs, lockHeld: n.lockHeld },
      this.times,
    );
    const models: CapacityModel[] = [...n.capacity.models];
    let reserved = n.capacity.memory.reservedBytes;
    const now = this.now();
    for (const [m, p] of this.provisional.get(n.name) ?? []) {
      if (p.until < now || models.some((x) => x.name === m)) continue;
      models.push({
        name: m,
        digest: "",
        state: "loading",
        slots: 1,
        busy: 0,
        queued: 0,
        reservedBytes: p.bytes,
        pinned: false,
      });
      reserved += p.bytes;
    }
    return {
      name: n.name,
      eligible: healthy && n.state === "up" && !exclude.has(n.name),
      budgetBytes: n.capacity.memory.budgetBytes,
      reservedBytes: reserved,
      models,
      stored: new Set(n.capacity.stored.map((s) => s.name)),
      prefixes: new Set(n.capacity.prefixes[model] ?? []),
      inflight: this.inflight.get(n.name) ?? 0,
      self: n.name === this.self,
    };
  }

  private placeProvisionally(node: string, model: string, bytes: number): void {
    let m = this.provisional.get(node);
    if (!m) this.provisional.set(node, (m = new Map()));
    m.set(model, { until: this.now() + PROVISIONAL_MS, bytes: Math.ceil(bytes * 1.2) });
  }
}
