/**
 * This node's membership of the cluster, with no consensus of our own: PostgreSQL is the referee.
 *
 * - A dedicated session holds an advisory lock named for the node: the database releases it when the session dies
 *   (`kill -9`, a crash, a lost network), so every other node learns of the death from the lock, not from a guess.
 *   The same session LISTENs on the cluster channel and sends the heartbeats.
 * - Registering raises the node's epoch. A heartbeat only lands for the epoch it was registered with and while the
 *   row is `up`/`draining`: a node that was paused or partitioned long enough to be declared dead finds its
 *   heartbeat refused, stops its runners (`onFenced`), and registers again with a new epoch.
 * - Every heartbeat interval each node also sweeps the table with the pure decisions of membership-decisions.ts
 *   (the update is guarded by the epoch it saw, so two nodes declaring the same death do it once).
 * - A node that lost its session resynchronises from the table (`onListening(false)` then `true`): notifications
 *   sent meanwhile are lost, the table is not.
 */
import type pg from "pg";
import { CLUSTER_CHANNEL, isConnectionError, migratePostgres, openClient, query } from "../db/postgres.js";
import { LlmosError } from "../errors.js";
import type { Logger } from "../telemetry/logger.js";
import { CLUSTER_MIGRATIONS, NODE_LOCK_CLASS } from "./cluster-migrations.js";
import { decideDeaths, type MembershipTimes } from "./membership-decisions.js";
import { parseCapacity, type ClusterNode, type NodeCapacity } from "./node-capacity.js";

/** What goes over LISTEN/NOTIFY on the cluster channel. */
export type ClusterEvent =
  | { type: "key.changed"; id: string }
  | { type: "node.joined" | "node.left" | "node.dead" | "node.state" | "node.capacity"; node: string };

/** An early publication waits at least this long after the last (bounds the notifications a busy node sends). */
const PUBLISH_MIN_GAP_MS = 250;

export interface MembershipOptions extends MembershipTimes {
  url: string;
  node: string;
  /** Where peers reach this node. */
  advertise: string;
  pool: pg.Pool;
  /** What this node publishes with each heartbeat. */
  capacity: () => NodeCapacity;
  /** This node's registration went stale (declared dead while paused or cut off): stop every runner. */
  onFenced: () => Promise<void>;
  /** A notification arrived (key changes, node changes). */
  onEvent: (event: ClusterEvent) => void;
  /** Notifications arrive (true) or may have been missed (false: caches must not trust them). */
  onListening: (on: boolean) => void;
  logger: Logger;
}

interface NodeRow {
  name: string;
  url: string;
  state: ClusterNode["state"];
  epoch: number;
  registered_at: number;
  capacity: unknown;
  age_ms: number;
  lock_held: boolean;
}

export class ClusterMembership {
  private session: pg.Client | undefined;
  private epochValue = 0;
  private stateValue: ClusterNode["state"] = "up";
  private view: ClusterNode[] = [];
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private stopped = false;
  private databaseUp = false;
  private publishTimer: NodeJS.Timeout | undefined;
  private lastPublishAt = 0;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly options: MembershipOptions) {}

  /** Migrates, takes the node's lock and registers; throws when another live node has this name. */
  async start(): Promise<void> {
    await migratePostgres(this.options.pool, "cluster_schema_migrations", CLUSTER_MIGRATIONS);
    await this.register();
    await this.refresh();
    this.timer = setInterval(() => void this.tick(), this.options.heartbeatMs);
  }

  get epoch(): number {
    return this.epochValue;
  }

  /** This node's state as its last heartbeat saw it (`draining` after an operator's drain). */
  get state(): ClusterNode["state"] {
    return this.stateValue;
  }

  /** True while this node's session with the database works. */
  get database(): boolean {
    return this.databaseUp;
  }

  /** Every node as last read (this one included). */
  nodes(): readonly ClusterNode[] {
    return this.view;
  }

  /** Calls `fn` after each refresh of the view; returns the unsubscribe function. */
  onRefresh(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Publishes this node's capacity soon, ahead of the next heartbeat, and tells the other nodes to re-read it: a
   * model just loaded or unloaded, or a new conversation cached, would otherwise stay unseen for up to a heartbeat
   * interval, and requests meanwhile go where the model is not (a second copy loads) or lose their cache. Coalesced,
   * and at most one per 250 ms.
   */
  publishSoon(): void {
    if (this.publishTimer || this.stopped) return;
    const wait = Math.max(20, this.lastPublishAt + PUBLISH_MIN_GAP_MS - Date.now());
    this.publishTimer = setTimeout(() => {
      this.publishTimer = undefined;
      void this.publishNow();
    }, wait);
    this.publishTimer.unref();
  }

  private async publishNow(): Promise<void> {
    // A lost or stale registration is the tick's to handle; a tick under way heartbeats without telling the other
    // nodes, so this publication comes right after it.
    if (this.stopped || !this.session) return;
    if (this.ticking) return this.publishSoon();
    this.ticking = true;
    this.lastPublishAt = Date.now();
    try {
      if (await this.heartbeat(true)) await this.refresh();
    } catch {
      /* the next tick retries and reports */
    } finally {
      this.ticking = false;
    }
  }

  /** Sets a node's state (`draining`: an operator's drain; `up`: resume). Throws `not_found`. */
  async setState(node: string, state: "up" | "draining"): Promise<void> {
    const { rowCount } = await query(
      this.options.pool,
      `WITH changed AS (
         UPDATE cluster_nodes SET state = $2 WHERE name = $1 AND state IN ('up', 'draining') RETURNING name)
       SELECT pg_notify($3, json_build_object('type', 'node.state', 'node', name)::text) FROM changed`,
      [node, state, CLUSTER_CHANNEL],
    );
    if (!rowCount) throw new LlmosError("not_found", `no live node named ${JSON.stringify(node)}`);
    await this.refresh();
  }

  /** Leaves the cluster cleanly (state `left`) and ends the session (which releases the lock). Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.publishTimer);
    const session = this.session;
    this.session = undefined;
    if (!session) return;
    try {
      await session.query(
        `WITH left_ AS (UPDATE cluster_nodes SET state = 'left' WHERE name = $1 AND epoch = $2 RETURNING name)
         SELECT pg_notify($3, json_build_object('type', 'node.left', 'node', name)::text) FROM left_`,
        [this.options.node, this.epochValue, CLUSTER_CHANNEL],
      );
    } catch {
      /* the database is gone: the lock goes with the session */
    }
    await session.end().catch(() => undefined);
  }

  /**
   * Opens the session, takes the lock, raises the epoch and LISTENs. With `resume`, after a lost session: when the
   * row still shows this node's epoch as a live member (nobody declared it dead meanwhile, e.g. the database itself
   * was down), the registration goes on under the same epoch and the runners keep running; otherwise the runners are
   * stopped first (`onFenced`) and the node registers anew. Returns whether it kept its epoch.
   */
  private async register(resume = false): Promise<boolean> {
    const o = this.options;
    const session = openClient(o.url, `llmos:${o.node}`);
    session.on("error", (error) => {
      o.logger.warn({ err: error }, "cluster database session lost");
      if (this.session === session) this.sessionLost();
    });
    session.on("end", () => {
      if (this.session === session) this.sessionLost();
    });
    try {
      await session.connect();
      const { rows } = await session.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok", [
        NODE_LOCK_CLASS,
        o.node,
      ]);
      if (!rows[0]?.ok)
        throw new LlmosError("conflict", `another live node of the cluster is named ${JSON.stringify(o.node)}`);
      if (resume) {
        const { rows: mine } = await session.query<{ state: ClusterNode["state"]; epoch: number }>(
          "SELECT state, epoch FROM cluster_nodes WHERE name = $1",
          [o.node],
        );
        const row = mine[0];
        if (row && row.epoch === this.epochValue && (row.state === "up" || row.state === "draining")) {
          await session.query(`LISTEN ${CLUSTER_CHANNEL}`);
          session.on("notification", (n) => this.notified(n.payload));
          this.session = session;
          this.stateValue = row.state;
          this.databaseUp = true;
          o.onListening(true);
          o.logger.info({ node: o.node, epoch: this.epochValue }, "cluster session restored");
          return true;
        }
        o.logger.warn({ node: o.node, epoch: this.epochValue }, "declared dead while the session was lost");
        await o.onFenced();
      }
      const registered = await session.query<{ epoch: number; state: ClusterNode["state"] }>(
        `INSERT INTO cluster_nodes (name, url, state, epoch, registered_at, heartbeat_at, capacity)
           VALUES ($1, $2, 'up', 1, $3, now(), $4)
         ON CONFLICT (name) DO UPDATE SET url = excluded.url, state = 'up', epoch = cluster_nodes.epoch + 1,
           registered_at = excluded.registered_at, heartbeat_at = now(), capacity = excluded.capacity
         RETURNING epoch, state`,
        [o.node, o.advertise, Date.now(), JSON.stringify(o.capacity())],
      );
      await session.query(`LISTEN ${CLUSTER_CHANNEL}`);
      await session.query("SELECT pg_notify($1, $2)", [
        CLUSTER_CHANNEL,
        JSON.stringify({ type: "node.joined", node: o.node } satisfies ClusterEvent),
      ]);
      session.on("notification", (n) => this.notified(n.payload));
      this.session = session;
      this.epochValue = registered.rows[0]!.epoch;
      this.stateValue = "up";
      this.databaseUp = true;
      o.onListening(true);
      o.logger.info({ node: o.node, epoch: this.epochValue, url: o.advertise }, "joined the cluster");
      return false;
    } catch (error) {
      await session.end().catch(() => undefined);
      throw error;
    }
  }

  private sessionLost(): void {
    this.session = undefined;
    this.databaseUp = false;
    this.options.onListening(false);
  }

  private notified(payload: string | undefined): void {
    let event: ClusterEvent;
    try {
      event = JSON.parse(payload ?? "") as ClusterEvent;
    } catch {
      return;
    }
    this.options.onEvent(event);
    if (event.type !== "key.changed") void this.refresh().catch(() => undefined);
  }

  /** One heartbeat interval: heartbeat (or re-register after a fence or a lost session), then sweep. */
  private async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      if (!this.session) {
        // The session died and with it the lock: others may have declared this node dead (then whatever runs here
        // belongs to the old registration and is stopped), or the database itself was away (then nothing changed).
        await this.register(true);
      } else if (!(await this.heartbeat())) {
        this.options.logger.warn({ node: this.options.node, epoch: this.epochValue }, "fenced: registering again");
        await this.options.onFenced();
        const old = this.session;
        this.session = undefined;
        await old?.end().catch(() => undefined);
        await this.register();
      }
      await this.sweep();
      await this.refresh();
    } catch (error) {
      if (!isConnectionError(error) && !(error instanceof LlmosError && error.code === "unavailable"))
        this.options.logger.error({ err: error }, "cluster heartbeat failed");
    } finally {
      this.ticking = false;
    }
  }

  /** False when the registration is stale (another node declared this one dead, or it re-registered elsewhere). */
  private async heartbeat(notify = false): Promise<boolean> {
    const update = `UPDATE cluster_nodes SET heartbeat_at = now(), capacity = $3
        WHERE name = $1 AND epoch = $2 AND state IN ('up', 'draining') RETURNING name, state`;
    const { rows } = await query<{ state: ClusterNode["state"] }>(
      this.session!,
      notify
        ? `WITH beat AS (${update})
           SELECT state, pg_notify($4, json_build_object('type', 'node.capacity', 'node', name)::text) FROM beat`
        : update,
      [
        this.options.node,
        this.epochValue,
        JSON.stringify(this.options.capacity()),
        ...(notify ? [CLUSTER_CHANNEL] : []),
      ],
    );
    if (rows.length === 0) return false;
    this.stateValue = rows[0]!.state;
    return true;
  }

  /** Declares the dead (each update guarded by the epoch seen). */
  private async sweep(): Promise<void> {
    const rows = await this.read();
    const decision = decideDeaths(
      rows.map((r) => ({
        name: r.name,
        state: r.state,
        epoch: r.epoch,
        heartbeatAgeMs: r.heartbeatAgeMs,
        lockHeld: r.lockHeld,
      })),
      this.options,
      this.options.node,
    );
    if (decision.held.length > 0)
      this.options.logger.warn({ held: decision.held }, "most nodes look unhealthy: nobody is declared dead");
    for (const d of decision.dead) {
      const { rowCount } = await query(
        this.options.pool,
        `WITH dead AS (UPDATE cluster_nodes SET state = 'dead'
           WHERE name = $1 AND epoch = $2 AND state IN ('up', 'draining') RETURNING name)
         SELECT pg_notify($3, json_build_object('type', 'node.dead', 'node', name)::text) FROM dead`,
        [d.name, d.epoch, CLUSTER_CHANNEL],
      );
      if (rowCount) this.options.logger.warn({ node: d.name, why: d.why }, "node declared dead");
    }
  }

  /** Re-reads every node. */
  async refresh(): Promise<void> {
    this.view = await this.read();
    for (const fn of this.listeners) fn();
  }

  private async read(): Promise<ClusterNode[]> {
    const { rows } = await query<NodeRow>(
      this.options.pool,
      `SELECT n.name, n.url, n.state, n.epoch, n.registered_at, n.capacity,
          (extract(epoch FROM (now() - n.heartbeat_at)) * 1000)::bigint AS age_ms,
          EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted
                    AND l.classid = $1::int::oid AND l.objid = hashtext(n.name)::oid AND l.objsubid = 2) AS lock_held
        FROM cluster_nodes n ORDER BY n.name`,
      [NODE_LOCK_CLASS],
    );
    const readAt = Date.now();
    return rows.map((r) => ({
      name: r.name,
      url: r.url,
      state: r.state,
      epoch: r.epoch,
      heartbeatAgeMs: Math.max(0, r.age_ms),
      heartbeatAt: readAt - Math.max(0, Number(r.age_ms)),
      lockHeld: r.lock_held,
      registeredAt: r.registered_at,
      capacity: parseCapacity(r.capacity),
    }));
  }
}
