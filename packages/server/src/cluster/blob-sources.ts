/**
 * Where a node gets a blob it does not store (pure decisions over what the nodes published, tested with hand-written
 * nodes): from the live peers that store it, the least busy first (a peer that is generating serves the file at the
 * expense of its tokens), never from a peer that sent corrupt bytes of that blob recently, and peers that failed
 * this node lately after those that did not. When no peer can send it, the model's origin (the pull reference it came from), if any.
 */
import { isHealthy, type MembershipTimes } from "./membership-decisions.js";
import type { CapacityStored, ClusterNode } from "./node-capacity.js";

/** How long a peer that sent bytes not matching their digest is not asked for that blob again. */
export const CORRUPT_PEER_MS = 10 * 60_000;
/** How long a peer that failed a transfer (unreachable, cut off) is asked only after the others. */
export const FAILED_PEER_MS = 60_000;

/** What this node noticed about peers' transfers (kept by PeerNotes). */
export interface PeerNote {
  /** Blobs it sent bytes of whose sha256 did not match, by digest: until then it is not asked for them. */
  corruptUntil?: Readonly<Record<string, number>>;
  /** Failed otherwise (until this time, the peer is asked last). */
  failedUntil?: number;
}

/** A peer that can send a blob, in the order to ask. */
export interface BlobSource {
  name: string;
  url: string;
}

/** True when `stored` (a model a node published) needs `digest`. */
function storesBlob(stored: CapacityStored, digest: string): boolean {
  return stored.digest === digest || (Array.isArray(stored.blobs) && stored.blobs.includes(digest));
}

/**
 * The peers to ask for `want` (a blob digest, or a model by canonical name), best first: live (`up` or `draining`:
 * a draining node still serves files) and healthy, not `self`, not excluded, not noted corrupt for the blob; those
 * not noted failed first; then the least busy (requests running and queued); then by name, so the order is stable.
 */
export function orderBlobSources(
  want: { digest: string } | { model: string },
  nodes: readonly ClusterNode[],
  self: string,
  notes: ReadonlyMap<string, PeerNote>,
  times: MembershipTimes,
  now: number,
  exclude: ReadonlySet<string> = new Set(),
): BlobSource[] {
  const has = (n: ClusterNode) =>
    n.capacity.stored.some((s) => ("digest" in want ? storesBlob(s, want.digest) : s.name === want.model));
  const candidates = nodes.filter(
    (n) =>
      n.name !== self &&
      !exclude.has(n.name) &&
      (n.state === "up" || n.state === "draining") &&
      isHealthy(
        { name: n.name, state: n.state, epoch: n.epoch, heartbeatAgeMs: n.heartbeatAgeMs, lockHeld: n.lockHeld },
        times,
      ) &&
      !("digest" in want && (notes.get(n.name)?.corruptUntil?.[want.digest] ?? 0) > now) &&
      has(n),
  );
  const failed = (n: ClusterNode) => ((notes.get(n.name)?.failedUntil ?? 0) > now ? 1 : 0);
  const busy = (n: ClusterNode) => n.capacity.models.reduce((sum, m) => sum + m.busy + m.queued, 0);
  return candidates
    .sort((x, y) => failed(x) - failed(y) || busy(x) - busy(y) || x.name.localeCompare(y.name))
    .map((n) => ({ name: n.name, url: n.url }));
}

/** The pull reference a model published by some node came from (the first that records one), if any. */
export function originOf(model: string, nodes: readonly ClusterNode[]): string | undefined {
  for (const n of nodes)
    for (const s of n.capacity.stored) if (s.name === model && typeof s.source === "string") return s.source;
  return undefined;
}

/**
 * The reference to pull a stored model again from where it came from: its registry manifest (pinned by digest) for
 * a registry pull, the Hub reference or URL a Hub or URL pull was made from (its definition's FROM), else none
 * (imports and creates have no origin).
 */
export function pullSourceOf(record: {
  origin?: { registry: string; repository: string; manifestDigest: string } | undefined;
  definition: { from?: string | undefined };
}): string | undefined {
  const o = record.origin;
  if (o) return `oci://${o.registry}/${o.repository}@${o.manifestDigest}`;
  const from = record.definition.from ?? "";
  if (/^(https?:\/\/|hf:\/\/|hf\.co\/|huggingface\.co\/)/i.test(from)) return from;
  return undefined;
}

/** What this node noticed about peers' transfers, by peer name. */
export class PeerNotes {
  private readonly notes = new Map<string, PeerNote>();

  constructor(private readonly now: () => number = Date.now) {}

  /** `peer` sent bytes of `digest` that do not hash to it. */
  corrupt(peer: string, digest: string): void {
    const note = this.notes.get(peer);
    this.notes.set(peer, { ...note, corruptUntil: { ...note?.corruptUntil, [digest]: this.now() + CORRUPT_PEER_MS } });
  }

  /** `peer` could not be reached or cut a transfer off. */

  failed(peer: string): void {
    this.notes.set(peer, { ...this.notes.get(peer), failedUntil: this.now() + FAILED_PEER_MS });
  }

  snapshot(): ReadonlyMap<string, PeerNote> {
    return this.notes;
  }
}
