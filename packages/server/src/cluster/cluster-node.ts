/**
 * This daemon as a node of a cluster (built by daemon.ts when `--cluster` / LLMOS_CLUSTER_URL is set): the shared
 * PostgreSQL pool, the security state in it (keys cached while notifications arrive, rate limits for the whole
 * cluster), membership with heartbeats that publish this node's capacity, the hand-over of its models when an
 * operator drains it, and the cluster's status for `GET /api/cluster`.
 */
import os from "node:os";
import type pg from "pg";
import type { ClusterModelInfo, ClusterNodeInfo, ClusterStatus } from "@llmos/protocol";
import type { ClusterConfig } from "../config/config.js";
import { openPool } from "../db/postgres.js";
import type { Scheduler } from "../scheduler/scheduler.js";
import type { PlacementEstimate } from "../scheduler/sizing.js";
import {
  CachedKeyStore,
  PostgresRateLimitStore,
  PostgresSecurityRepository,
  type RateLimitStore,
  type SecurityRepository,
} from "../security/index.js";
import type { ModelStore } from "../store/index.js";
import type { Logger } from "../telemetry/logger.js";
import { BlobFetcher } from "./blob-fetcher.js";
import { pullSourceOf } from "./blob-sources.js";
import { ClusterMembership, type ClusterEvent } from "./membership.js";
import { isHealthy } from "./membership-decisions.js";
import type { CapacityModel, CapacityStored, NodeCapacity } from "./node-capacity.js";
import { FenceRegistry, PeerForwarder } from "./peer-forwarder.js";
import { PrefixIndex, prefixChain, promptTextOf } from "./prefix-chain.js";
import { RequestRouter } from "./request-router.js";
import { canonicalModelName } from "../store/names.js";

/** The security layer's storage in cluster mode (opened before the security service). */
export interface ClusterSecurityStorage {
  pool: pg.Pool;
  repository: SecurityRepository;
  rateLimitStore: RateLimitStore;
  keys: CachedKeyStore;
}

/** Opens the pool and the security tables in PostgreSQL (migrating them). */
export async function openClusterSecurity(config: ClusterConfig, logger: Logger): Promise<ClusterSecurityStorage> {
  const pool = openPool(config.url, {
    applicationName: `llmos:${config.nodeName}`,
    onIdleError: (error) => logger.warn({ err: error }, "cluster database connection lost"),
  });
  try {
    const inner = await PostgresSecurityRepository.open(pool);
    const keys = new CachedKeyStore(inner.keys, { outageTtlMs: config.keyCacheTtlMs });
    const repository: SecurityRepository = {
      keys,
      usage: inner.usage,
      audit: inner.audit,
      responses: inner.responses,
      close: async () => {
        await inner.close();
        await pool.end();
      },
    };
    return { pool, repository, rateLimitStore: await PostgresRateLimitStore.open(pool), keys };
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error;
  }
}

export interface ClusterNodeOptions {
  config: ClusterConfig;
  /** This daemon's URL (the default for `--advertise`). */
  url: string;
  version: string;
  threads: number;
  /** Slots a model gets when its definition sets none (LLMOS_PARALLEL). */
  defaultSlots: number;
  storage: ClusterSecurityStorage;
  scheduler: Scheduler;
  store: ModelStore;
  /** A key changed elsewhere: drop what this node knows of it. */
  forgetKey: (id: string) => void;
  /** Bytes of a blob received from `peer` (the metric `llmos_cluster_blob_transfer_bytes_total`). */
  onTransferBytes?: (peer: string, bytes: number) => void;
  logger: Logger;
}

export class ClusterNode {
  readonly membership: ClusterMembership;
  readonly prefixes = new PrefixIndex();
  readonly router: RequestRouter;
  readonly forwarder: PeerForwarder;
  readonly fences = new FenceRegistry();
  /** Gets models this node must run and does not store from the peers that store them. */
  readonly fetcher: BlobFetcher;
  private stored: CapacityStored[] = [];
  private storedRefreshing = false;
  /** The scheduler's estimates of the models stored here, by digest (a model's file does not change). */
  private readonly estimates = new Map<string, PlacementEstimate>();
  /** This node is draining and has handed its models over (reset on resume). */
  private handedOver = false;

  constructor(private readonly options: ClusterNodeOptions) {
    const { config, storage, logger } = options;
    this.membership = new ClusterMembership({
      url: config.url,
      node: config.nodeName,
      advertise: config.advertise ?? options.url,
      pool: storage.pool,
      heartbeatMs: config.heartbeatMs,
      deadAfterMs: config.deadAfterMs,
      capacity: () => this.capacity(),
      onFenced: async () => {
        // Declared dead while paused or cut off: its requests were given to others. Stop every runner (and with
        // them whatever they were still generating) before registering again.
        logger.warn("this node's registration is stale: stopping its runners");
        for (const m of options.scheduler.snapshot().models) {
          await options.scheduler.unload(m.name).catch(() => false);
          this.prefixes.forget(m.name);
        }
      },
      onEvent: (event) => this.onEvent(event),
      onListening: (on) => storage.keys.listening(on),
      logger,
    });
    this.router = new RequestRouter(this.membership, config.nodeName, config, Date.now, (model) => {
      const s = this.stored.find((x) => x.name === model);
      return s ? this.estimates.get(s.digest) : undefined;
    });
    this.forwarder = new PeerForwarder(this.router, config.nodeName, config.secret, logger);
    this.fetcher = new BlobFetcher({
      self: config.nodeName,
      secret: config.secret,
      store: options.store,
      nodes: () => this.membership.nodes(),
      times: config,
      bytesPerSecond: config.transferBytesPerSecond,
      onBytes: options.onTransferBytes ?? (() => undefined),
      logger,
    });
  }

  /**
   * Before a request runs here: when its model is not in this node's store and a peer stores it, waits while the
   * model is fetched from the peers (the request counts as loading meanwhile). No-op otherwise.
   */
  async ensureModel(body: unknown, signal?: AbortSignal): Promise<void> {
    const model = (body as { model?: unknown } | null)?.model;
    if (typeof model === "string") await this.ensureStored(model, signal);
  }

  /** {@link ensureModel} by name (an explicit load). */
  async ensureStored(model: string, signal?: AbortSignal): Promise<void> {
    let name: string;
    try {
      name = canonicalModelName(model);
    } catch {
      return; // an invalid name: the route answers 400
    }
    await this.fetcher.ensure(name, signal);
  }

  /**
   * Notes that a request with `body` runs here: its prompt's prefix chain is published for affinity (at once when it
   * starts a conversation the other nodes do not know here yet).
   */
  noteServed(body: unknown): void {
    const raw = (body as { model?: unknown } | null)?.model;
    if (typeof raw !== "string") return;
    let model: string;
    try {
      model = canonicalModelName(raw);
    } catch {
      return; // an invalid name: the route answers 400
    }
    const chain = prefixChain(promptTextOf(body));
    if (chain.length === 0) return; // shorter than a block: nothing to publish (and no snapshot to take)
    const slots = this.options.scheduler.snapshot().models.find((m) => m.name === model)?.slots;
    if (this.prefixes.record(model, chain, slots ?? this.options.defaultSlots)) this.membership.publishSoon();
  }

  get name(): string {
    return this.options.config.nodeName;
  }

  async start(): Promise<void> {
    await this.refreshStored();
    // Loads and unloads are published at once: a request routed meanwhile would load a second copy elsewhere.
    this.unsubscribe = this.options.scheduler.subscribe((event) => {
      if (event.type === "model.loaded" || event.type === "model.unloaded" || event.type === "model.crashed") {
        if (event.type !== "model.loaded") this.prefixes.forget(event.model);
        this.membership.publishSoon();
      }
    });
    this.membership.onRefresh(() => this.checkDrain());
    await this.membership.start();
  }

  stop(): Promise<void> {
    this.fetcher.stop();
    this.unsubscribe?.();
    return this.membership.stop();
  }

  private unsubscribe: (() => void) | undefined;

  /** Starts the hand-over once this node is seen draining (an operator's drain, through any node). */
  private checkDrain(): void {
    const me = this.membership.nodes().find((n) => n.name === this.name);
    if (me?.state !== "draining") {
      this.handedOver = false;
      return;
    }
    if (this.handedOver) return;
    this.handedOver = true;
    void this.handOver().catch((error: unknown) =>
      this.options.logger.warn({ err: error }, "handing models over on drain failed"),
    );
  }

  /**
   * Drained: each model loaded here is loaded where routing would now place it (unless another node has it loaded
   * already), so that the next request finds a warm copy; then it is unloaded here once its requests finish.
   */
  private async handOver(): Promise<void> {
    const { scheduler, logger } = this.options;
    const models = scheduler.snapshot().models.filter((m) => m.state !== "draining" && m.state !== "unloading");
    for (const m of models) {
      if (!this.handedOver) return; // resumed meanwhile
      const routed = this.router.route({ model: m.name }, new Set([this.name]));
      if (routed?.decision.kind === "node" && routed.target && routed.decision.reason !== "loaded") {
        logger.info({ model: m.name, to: routed.target.name }, "drain: handing the model over");
        await this.forwarder
          .load(routed.target, m.name)
          .catch((error: unknown) => logger.warn({ err: error, model: m.name }, "drain: the hand-over load failed"));
      }
      if (!this.handedOver) return;
      await scheduler.unload(m.name).catch(() => false);
    }
  }
  private onEvent(event: ClusterEvent): void {
    if (event.type === "key.changed") {
      this.options.storage.keys.invalidate(event.id);
      this.options.forgetKey(event.id);
    }
  }

  /** What the next heartbeat publishes. */
  capacity(): NodeCapacity {
    const snap = this.options.scheduler.snapshot();
    void this.refreshStored();
    const models: CapacityModel[] = snap.models.map((m) => ({
      name: m.name,
      digest: "",
      state: m.state === "placing" || m.state === "starting" ? "loading" : m.state,
      slots: m.slots,
      busy: m.busy,
      queued: m.queued,
      reservedBytes: m.reservedBytes,
      pinned: m.pinned || m.keepAliveMs < 0,
    }));
    // A model being fetched from peers is loading here: requests for it come here rather than start another copy.
    let fetchingBytes = 0;
    for (const f of this.fetcher.inProgress()) {
      if (models.some((m) => m.name === f.model)) continue;
      const reservedBytes = Math.ceil(f.bytes * 1.2);
      fetchingBytes += reservedBytes;
      models.push({
        name: f.model,
        digest: "",
        state: "loading",
        slots: 1,
        busy: 0,
        queued: f.waiting,
        reservedBytes,
        pinned: false,
      });
    }
    return {
      version: this.options.version,
      threads: this.options.threads,
      cpus: os.cpus().length,
      memory: {
        budgetBytes: snap.memoryBudgetBytes,
        reservedBytes: snap.models.reduce((n, m) => n + m.reservedBytes, 0) + fetchingBytes,
        totalBytes: os.totalmem(),
        availableBytes: os.freemem(),
      },
      queued: snap.queuedTotal,
      models,
      stored: this.stored,
      prefixes: this.prefixes.summary(),
    };
  }

  private async refreshStored(): Promise<void> {
    if (this.storedRefreshing) return;
    this.storedRefreshing = true;
    try {
      const records = await this.options.store.list();
      for (const r of records) {
        if (this.estimates.has(r.digest)) continue;
        const e = await this.options.scheduler.estimate(r.name).catch(() => undefined);
        if (e) this.estimates.set(r.digest, e);
      }
      this.stored = records.map((r) => {
        const source = pullSourceOf(r);
        return {
          name: r.name,
          digest: r.digest,
          sizeBytes: r.size,
          estimatedBytes: this.estimates.get(r.digest)?.estimatedBytes ?? 0,
          minimumBytes: this.estimates.get(r.digest)?.minimumBytes ?? 0,
          // Every blob, so that a peer fetching one knows who has it (cluster/blob-sources.ts).
          blobs: [r.digest, ...r.adapters.map((a) => a.digest), ...r.projectors.map((p) => p.digest)],
          ...(source ? { source } : {}),
        };
      });
    } catch {
      /* keep the last list */
    } finally {
      this.storedRefreshing = false;
    }
  }

  /** `GET /api/cluster`. */
  status(): ClusterStatus {
    const times = { heartbeatMs: this.options.config.heartbeatMs, deadAfterMs: this.options.config.deadAfterMs };
    const nodes: ClusterNodeInfo[] = this.membership.nodes().map((n) => ({
      name: n.name,
      url: n.url,
      state: n.state,
      healthy: isHealthy(
        { name: n.name, state: n.state, epoch: n.epoch, heartbeatAgeMs: n.heartbeatAgeMs, lockHeld: n.lockHeld },
        times,
      ),
      epoch: n.epoch,
      heartbeatAgeMs: n.heartbeatAgeMs,
      registeredAt: new Date(n.registeredAt).toISOString(),
      version: n.capacity.version,
      threads: n.capacity.threads,
      cpus: n.capacity.cpus,
      memory: n.capacity.memory,
      models: n.capacity.models.map(({ pinned: _pinned, ...m }) => m),
      queued: n.capacity.queued,
      stored: n.capacity.stored.map((s) => s.name),
    }));
    const models = new Map<string, ClusterModelInfo>();
    for (const n of this.membership.nodes()) {
      if (n.state === "dead" || n.state === "left") continue;
      for (const s of n.capacity.stored) {
        const m = models.get(s.name) ?? {
          name: s.name,
          digest: s.digest,
          sizeBytes: s.sizeBytes,
          estimatedBytes: s.estimatedBytes,
          minimumBytes: s.minimumBytes,
          storedOn: [],
          loadedOn: [],
        };
        m.storedOn.push(n.name);
        models.set(s.name, m);
      }
      for (const l of n.capacity.models) {
        const m = models.get(l.name);
        if (m && (l.state === "loading" || l.state === "ready")) m.loadedOn.push(n.name);
      }
    }
    return {
      self: this.name,
      nodes,
      models: [...models.values()].sort((a, b) => a.name.localeCompare(b.name)),
      database: this.membership.database,
      transfers: this.fetcher.transfers(),
    };
  }
}
