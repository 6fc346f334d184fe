/**
 * Turns what the nodes published (membership.ts) and what this node sent since (requests in flight, placements not
 * yet in a heartbeat) into the routing decision's input, and applies `decideRoute`. Every live node is a candidate
 * once some node has the model (a node chosen without it fetches the blobs from a peer: blob-fetcher.ts); a model
 * that no node has is left to the receiving node (which answers 404 or pulls it as it would alone). A model's
 * memory need is the scheduler's sizing (the estimate a load reserves with the default context and slots, and with
 * the smallest context), never its file size: a small file with a large KV cache must not land where only the file
 * fits.
 */
import type { PlacementEstimate } from "../scheduler/sizing.js";
import { canonicalModelName } from "../store/names.js";
import type { ClusterMembership } from "./membership.js";
import { isHealthy, type MembershipTimes } from "./membership-decisions.js";
import type { CapacityModel, CapacityStored, ClusterNode } from "./node-capacity.js";
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
  /** Requests sent to (or run on) each node from here, by start time, until they end. */
  private readonly inflight = new Map<string, Map<number, number>>();
  private nextRequest = 0;
  private readonly provisional = new Map<string, Map<string, { until: number; bytes: number }>>();

  constructor(
    private readonly membership: ClusterMembership,
    private readonly self: string,
    private readonly times: MembershipTimes,
    private readonly now: () => number = Date.now,
    /** The scheduler's own estimate for a model this node stores (undefined: not stored here, or not sized yet). */
    private readonly localEstimate: (model: string) => PlacementEstimate | undefined = () => undefined,
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
    const estimate = this.estimateOf(model, stored);
    const chain = prefixChain(promptTextOf(body));
    const routing = nodes.map((n) => this.routingNode(n, model, exclude));
    const decision = decideRoute({ model, ...estimate, chain }, routing);
    const target = decision.kind === "node" ? nodes.find((n) => n.name === decision.node) : undefined;
    if (decision.kind === "node" && decision.reason !== "loaded")
      this.placeProvisionally(decision.node, model, estimate.estimatedBytes);
    return { model, chain, decision, target };
  }

  /**
   * What `model` needs on a node: the scheduler's own sizing when this node stores it (what a load here would
   * reserve), else the largest estimate its holders published, else (a peer of an older version) its file size
   * with a fifth more for the KV cache and buffers.
   */
  private estimateOf(model: string, stored: readonly CapacityStored[]): PlacementEstimate {
    const local = this.localEstimate(model);
    if (local) return local;
    const published = stored.filter((s) => s.estimatedBytes > 0);
    if (published.length > 0)
      return {
        estimatedBytes: Math.max(...published.map((s) => s.estimatedBytes)),
        minimumBytes: Math.max(...published.map((s) => s.minimumBytes)),
      };
    const size = Math.max(0, ...stored.map((s) => s.sizeBytes));
    return { estimatedBytes: Math.ceil(size * 1.2), minimumBytes: size };
  }

  /** Counts a request sent to (or run on) `node` until `done` is called. */
  begin(node: string): () => void {
    const requests = this.inflight.get(node) ?? new Map<number, number>();
    this.inflight.set(node, requests);
    const id = this.nextRequest++;
    requests.set(id, this.now());
    return () => void requests.delete(id);
  }

  /**
   * Requests in flight to `n` that its last heartbeat does not show yet (begun after it was taken): those begun
   * before are in its busy and queued counts already, and counting them again would see twice the load.
   */
  private unseenInflight(n: ClusterNode): number {
    const since = n.heartbeatAt ?? 0;
    let count = 0;
    for (const at of this.inflight.get(n.name)?.values() ?? []) if (at >= since) count++;
    return count;
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
      inflight: this.unseenInflight(n),
      self: n.name === this.self,
    };
  }

  private placeProvisionally(node: string, model: string, bytes: number): void {
    let m = this.provisional.get(node);
    if (!m) this.provisional.set(node, (m = new Map()));
    m.set(model, { until: this.now() + PROVISIONAL_MS, bytes });
  }
}
