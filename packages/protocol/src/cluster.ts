/** Wire types of the cluster API (`GET /api/cluster`, drain and resume of a node). */

/**
 * A node's membership state. `up`: takes new work; `draining`: finishes what runs and takes nothing new (an
 * operator's `llmos cluster drain`); `dead`: its lease ran out (no heartbeat for the dead-after interval, or its
 * database session ended); `left`: it stopped cleanly.
 */
export type ClusterNodeState = "up" | "draining" | "dead" | "left";

/** A model held by one node's scheduler, as its heartbeat publishes it. */
export interface ClusterNodeModel {
  /** Canonical `name:tag`. */
  name: string;
  digest: string;
  /** `loading`, `ready`, `draining`, `unloading`. */
  state: string;
  slots: number;
  busy: number;
  queued: number;
  reservedBytes: number;
}

/** One node of the cluster. */
export interface ClusterNodeInfo {
  name: string;
  /** Where peers reach it (`--advertise`). */
  url: string;
  state: ClusterNodeState;
  /** `up` or `draining` with a heartbeat younger than the suspect interval. */
  healthy: boolean;
  /** Registration epoch: raised each time the node registers; a node that finds its epoch stale re-registers. */
  epoch: number;
  /** Milliseconds since the last heartbeat, by the database's clock. */
  heartbeatAgeMs: number;
  /** ISO-8601. */
  registeredAt: string;
  version: string;
  threads: number;
  cpus: number;
  memory: { budgetBytes: number; reservedBytes: number; totalBytes: number; availableBytes: number };
  /** Models in memory. */
  models: ClusterNodeModel[];
  /** Requests queued over all its models. */
  queued: number;
  /** Models on its disk (canonical names). */
  stored: string[];
}

/** A model some node of the cluster stores. */
export interface ClusterModelInfo {
  name: string;
  digest: string;
  sizeBytes: number;
  /** Memory estimate with the default context and slots, and with the smallest context. */
  estimatedBytes: number;
  minimumBytes: number;
  /** Nodes that have its blobs on disk. */
  storedOn: string[];
  /** Nodes that have it in memory (loading or ready). */
  loadedOn: string[];
}

/** A model the answering node is fetching from its peers (or, when none could send it, from its origin). */
export interface ClusterBlobTransfer {
  /** Canonical `name:tag`. */
  model: string;
  /** `sha256:<hex>` of its weights (empty until a peer sent the manifest). */
  digest: string;
  /** The peer the bytes come from now; `origin` for a pull from the model's origin; null before the first. */
  peer: string | null;
  completedBytes: number;
  /** Bytes of every blob of the model (0 until known). */
  totalBytes: number;
  /** ISO-8601. */
  startedAt: string;
}

/** `GET /api/cluster`. */
export interface ClusterStatus {
  /** The node that answered. */
  self: string;
  nodes: ClusterNodeInfo[];
  models: ClusterModelInfo[];
  /** True while the database is reachable from the node that answered. */
  database: boolean;
  /** Models the answering node is fetching from peers now. */
  transfers?: ClusterBlobTransfer[];
}
