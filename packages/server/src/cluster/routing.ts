/**
 * Where a request runs (a pure decision over what the nodes published, so it is tested with hand-written nodes):
 *
 * 1. a node with the model in memory (loading or ready), scored by free slots, queue depth and prompt-prefix
 *    affinity (the longest run of the prompt's hash chain the node served recently); when the best copy already has
 *    a slot's worth of requests waiting per slot and the prompt has no affinity, a node with the file and free
 *    memory loads another copy instead (scale out);
 * 2. else a node with the model's blobs on disk and the memory free for it;
 * 3. else the node whose free memory fits the model best (it fetches the blobs from a peer);
 * 4. else a node that can make room by evicting idle models (blobs on disk first);
 * 5. else a node whose budget holds the model at all, the least busy (the request waits there for memory).
 *
 * A node's budget is never exceeded: a node is only chosen for a model its budget holds (with the smallest context,
 * the scheduler shrinking it as it does on one machine). A model bigger than every node's budget is
 * `insufficient_capacity` at once.
 */
import type { CapacityModel } from "./node-capacity.js";
import { matchedBlocks } from "./prefix-chain.js";

/** One node as routing sees it (cluster-view.ts builds these from heartbeats and local knowledge). */
export interface RoutingNode {
  name: string;
  /** May take new work: up (not draining), heartbeat fresh, not excluded for this request. */
  eligible: boolean;
  budgetBytes: number;
  /** Memory reserved by its models, including placements decided and not yet visible in a heartbeat. */
  reservedBytes: number;
  /** Models in memory, including those placements (as `loading`). */
  models: readonly CapacityModel[];
  /** Models on its disk (canonical names). */
  stored: ReadonlySet<string>;
  /** Prefix hashes it served recently for the model asked for. */
  prefixes: ReadonlySet<string> | undefined;
  /** Requests sent there from here that its heartbeat does not show yet. */
  inflight: number;
  /** The node deciding. */
  self: boolean;
}

/** What is asked for. */
export interface RoutingDemand {
  /** Canonical `name:tag`. */
  model: string;
  /** Memory with the default context and slots, and with the smallest context. */
  estimatedBytes: number;
  minimumBytes: number;
  /** The prompt's prefix hash chain (may be empty). */
  chain: readonly string[];
}

export type RouteReason = "loaded" | "scales_out" | "stored" | "fits" | "evicts" | "waits";

export type RouteDecision =
  | { kind: "node"; node: string; reason: RouteReason; affinity: number }
  | { kind: "insufficient_capacity"; neededBytes: number; largestBudgetBytes: number }
  | { kind: "no_node" };

/** Weight of prefix affinity against load: a node holding the whole prefix wins unless its queue is 4x its slots. */
const AFFINITY_WEIGHT = 4;

export function decideRoute(demand: RoutingDemand, nodes: readonly RoutingNode[]): RouteDecision {
  const largest = Math.max(0, ...nodes.map((n) => n.budgetBytes));
  if (nodes.length > 0 && largest < demand.minimumBytes)
    return { kind: "insufficient_capacity", neededBytes: demand.minimumBytes, largestBudgetBytes: largest };
  const eligible = nodes.filter((n) => n.eligible && n.budgetBytes >= demand.minimumBytes);
  if (eligible.length === 0) return { kind: "no_node" };

  const need = (n: RoutingNode) => Math.min(demand.estimatedBytes, n.budgetBytes);
  const free = (n: RoutingNode) => n.budgetBytes - n.reservedBytes;
  // Room counted in copies of the model a node could still hold, not in bytes: nodes whose free memory differs by
  // less than one copy are equal, and equals go to the deciding node. Going by bytes, every node that receives a
  // request for a model nobody has loaded picks the same roomiest node at the same moment (none sees the others'
  // choices before a heartbeat), and the models pile up there.
  const room = (n: RoutingNode) => Math.floor(free(n) / Math.max(1, need(n)));
  const stored = eligible.filter((n) => n.stored.has(demand.model) && free(n) >= need(n) && !modelOn(n, demand.model));

  const loaded = eligible.filter((n) => modelOn(n, demand.model));
  if (loaded.length > 0) {
    const scored = loaded.map((n) => ({ n, ...loadedScore(n, demand) }));
    const best = pickMax(scored, (s) => s.score);
    // Scale out: when even the best copy has a full queue (as many waiting as it has slots) and a node with the
    // file has the memory free, a second copy is loaded there instead of queueing deeper.
    if (best.backlog < best.slots || stored.length === 0 || best.affinity > 0)
      return { kind: "node", node: best.n.name, reason: "loaded", affinity: best.affinity };
    return chosen(pickMax(stored, room), "scales_out");
  }

  if (stored.length > 0) return chosen(pickMax(stored, room), "stored");

  const fits = eligible.filter((n) => free(n) >= need(n));
  if (fits.length > 0)
    return chosen(
      pickMax(fits, (n) => -(free(n) - need(n))),
      "fits",
    );

  const evicts = eligible.filter((n) => free(n) + evictableBytes(n) >= need(n));
  if (evicts.length > 0)
    return chosen(
      pickMax(evicts, (n) => (n.stored.has(demand.model) ? 1e15 : 0) - busyness(n) * 1e12 + free(n)),
      "evicts",
    );

  return chosen(
    pickMax(eligible, (n) => -busyness(n)),
    "waits",
  );
}

function chosen(n: RoutingNode, reason: RouteReason): RouteDecision {
  return { kind: "node", node: n.name, reason, affinity: 0 };
}

/** True when `n` has `model` loading or ready (a draining copy takes no new requests). */
function modelOn(n: RoutingNode, model: string): boolean {
  return n.models.some((m) => m.name === model && (m.state === "loading" || m.state === "ready"));
}

function loadedScore(
  n: RoutingNode,
  demand: RoutingDemand,
): { score: number; affinity: number; backlog: number; slots: number } {
  const m = n.models.find((x) => x.name === demand.model && (x.state === "loading" || x.state === "ready"))!;
  const slots = Math.max(1, m.slots);
  const affinity = demand.chain.length > 0 ? matchedBlocks(demand.chain, n.prefixes) / demand.chain.length : 0;
  const freeSlots = Math.max(0, slots - m.busy - n.inflight);
  const backlog = m.queued + Math.max(0, m.busy + n.inflight - slots);
  return { score: AFFINITY_WEIGHT * affinity + freeSlots / slots - backlog / slots, affinity, backlog, slots };
}

/** Memory of models that could be evicted now (idle, not pinned). */
function evictableBytes(n: RoutingNode): number {
  return n.models
    .filter((m) => m.state === "ready" && m.busy === 0 && m.queued === 0 && !m.pinned)
    .reduce((sum, m) => sum + m.reservedBytes, 0);
}

function busyness(n: RoutingNode): number {
  return n.inflight + n.models.reduce((sum, m) => sum + m.busy + m.queued, 0);
}

/** The item with the highest key; ties go to the deciding node (no hop), then to the first name. */
function pickMax<T extends { self: boolean; name: string } | { n: RoutingNode }>(
  items: readonly T[],
  key: (t: T) => number,
): T {
  const nodeOf = (t: T): RoutingNode => ("n" in t ? t.n : (t as unknown as RoutingNode));
  let best = items[0]!;
  let bestKey = key(best);
  for (const item of items.slice(1)) {
    const k = key(item);
    const better =
      k > bestKey + 1e-9 ||
      (Math.abs(k - bestKey) <= 1e-9 &&
        (nodeOf(item).self && !nodeOf(best).self
          ? true
          : nodeOf(item).self === nodeOf(best).self && nodeOf(item).name < nodeOf(best).name));
    if (better) {
      best = item;
      bestKey = k;
    }
  }
  return best;
}
