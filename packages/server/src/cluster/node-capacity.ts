/**
 * What a node publishes with each heartbeat (the `capacity` column of `cluster_nodes`): memory, models in memory,
 * models on disk with their blobs and memory estimates, queue depth, and the prompt prefixes it served recently.
 * Every routing decision of every node reads this; nothing else about a peer is known without asking it.
 */
import type { ClusterNodeState } from "@llmos/protocol";

/** A model in a node's memory. */
export interface CapacityModel {
  name: string;
  digest: string;
  /** `loading`, `ready`, `draining`, `unloading` (the scheduler's states; the three load steps are `loading`). */
  state: string;
  slots: number;
  busy: number;
  queued: number;
  reservedBytes: number;
  /** Never evicted (pinned or kept alive forever). */
  pinned: boolean;
}

/** A model on a node's disk. */
export interface CapacityStored {
  name: string;
  digest: string;
  sizeBytes: number;
  /** Memory estimate with the node's default context and slots, and with the smallest context. */
  estimatedBytes: number;
  minimumBytes: number;
  /** Every blob the model needs (weights first). */
  blobs: string[];
  /** Where it was pulled from (a pull reference), for a node that cannot get it from a peer. */
  source?: string;
}

export interface NodeCapacity {
  version: string;
  threads: number;
  cpus: number;
  memory: { budgetBytes: number; reservedBytes: number; totalBytes: number; availableBytes: number };
  /** Requests queued over all models. */
  queued: number;
  models: CapacityModel[];
  stored: CapacityStored[];
  /** Prompt-prefix hashes served recently, per model (prefix-chain.ts). */
  prefixes: Record<string, string[]>;
}

/** A node as the cluster table shows it. */
export interface ClusterNode {
  name: string;
  url: string;
  state: ClusterNodeState;
  epoch: number;
  /** By the database's clock. */
  heartbeatAgeMs: number;
  /** When its last heartbeat was taken, by this node's clock (read time less the age); 0 when unknown. */
  heartbeatAt?: number;
  /** Its database session still holds its advisory lock (false: the session ended, the node is gone). */
  lockHeld: boolean;
  registeredAt: number;
  capacity: NodeCapacity;
}

/** An empty capacity (a node that registered and has not published yet). */
export function emptyCapacity(): NodeCapacity {
  return {
    version: "",
    threads: 0,
    cpus: 0,
    memory: { budgetBytes: 0, reservedBytes: 0, totalBytes: 0, availableBytes: 0 },
    queued: 0,
    models: [],
    stored: [],
    prefixes: {},
  };
}

/** Reads a capacity column written by any version: fields missing are filled with empty values. */
export function parseCapacity(value: unknown): NodeCapacity {
  const empty = emptyCapacity();
  if (typeof value !== "object" || value === null) return empty;
  const v = value as Partial<NodeCapacity>;
  return {
    version: typeof v.version === "string" ? v.version : "",
    threads: Number(v.threads) || 0,
    cpus: Number(v.cpus) || 0,
    memory: { ...empty.memory, ...(v.memory ?? {}) },
    queued: Number(v.queued) || 0,
    models: Array.isArray(v.models) ? v.models : [],
    stored: Array.isArray(v.stored) ? v.stored : [],
    prefixes: typeof v.prefixes === "object" && v.prefixes !== null ? v.prefixes : {},
  };
}
