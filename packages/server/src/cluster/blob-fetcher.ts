/**
 * Model distribution: a node that must run a model it does not store gets it from a peer that does. The manifest
 * comes from the first peer that answers; each missing blob from the peers that store it, best first
 * (blob-sources.ts), through the store's downloader: Range/resume from a partial file (a transfer cut off resumes
 * where it stopped, from another peer if need be), size and sha256 checked before the blob becomes visible, paced
 * to LLMOS_CLUSTER_TRANSFER_RATE. Bytes that do not match their digest are discarded, the peer is noted, and the
 * blob comes from another peer. When no peer can send it, the model is pulled from its origin (the pull reference
 * it records, under the pull URL policy); without one the request fails with `unavailable`.
 *
 * Requests for one model wait on one fetch, and a blob is downloaded once whatever asks for it (the store's shared
 * downloads, which pulls use too). The fetch goes on when the request that started it goes away (the next request
 * finds it done); it stops when the node stops (partial files stay for resume).
 */
import type { ClusterBlobTransfer } from "@llmos/protocol";
import { LlmosError, isLlmosError } from "../errors.js";
import {
  DEFAULT_DOWNLOAD_TUNING,
  manifestBlobs,
  type BlobRef,
  type DownloadTuning,
  type FetchBlobJob,
  type Manifest,
  type ModelStore,
} from "../store/index.js";
import type { Logger } from "../telemetry/logger.js";
import { PeerBlobClient, peerBlobUrl, PEER_VIRTUAL_ORIGIN } from "./blob-peer-client.js";
import { orderBlobSources, originOf, PeerNotes, pullSourceOf, type BlobSource } from "./blob-sources.js";
import { isHealthy, type MembershipTimes } from "./membership-decisions.js";
import type { ClusterNode } from "./node-capacity.js";

/** One connection per transfer (it is paced anyway); a failing peer is left quickly for the next one. */
const PEER_TUNING: DownloadTuning = {
  ...DEFAULT_DOWNLOAD_TUNING,
  parallelThreshold: Number.MAX_SAFE_INTEGER,
  connections: 1,
  retries: 1,
  retryBaseMs: 250,
};
/** How often a transfer checks that its peer is still a healthy member (a paused peer sends nothing, forever). */
const LIVENESS_POLL_MS = 250;

export interface BlobFetcherOptions {
  self: string;
  secret: string;
  store: ModelStore;
  /** The cluster as membership sees it now. */
  nodes: () => readonly ClusterNode[];
  times: MembershipTimes;
  /** LLMOS_CLUSTER_TRANSFER_RATE; <= 0 unlimited. */
  bytesPerSecond: number;
  /** Counts bytes received, by peer (`llmos_cluster_blob_transfer_bytes_total`). */
  onBytes: (peer: string, bytes: number) => void;
  logger: Logger;
  fetch?: typeof fetch;
}

interface Transfer {
  info: ClusterBlobTransfer;
  /** Requests waiting for the model. */
  waiting: number;
}

export class BlobFetcher {
  readonly notes = new PeerNotes();
  private readonly client: PeerBlobClient;
  /** Fetches in progress, by canonical model name. */
  private readonly models = new Map<string, { promise: Promise<void>; transfer: Transfer }>();
  private readonly stopping = new AbortController();

  constructor(private readonly options: BlobFetcherOptions) {
    this.client = new PeerBlobClient({
      self: options.self,
      secret: options.secret,
      bytesPerSecond: options.bytesPerSecond,
      onBytes: options.onBytes,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
  }

  /**
   * Makes sure `model` (canonical) is in this node's store: returns at once when it is, or when no peer stores it
   * (the request is then handled as on a single node: 404, or a pull); otherwise waits for the fetch (shared with
   * other requests for it). `signal` ends the wait, not the fetch.
   * @throws what the fetch failed with (`unavailable` when no peer could send it and it has no origin).
   */
  async ensure(model: string, signal?: AbortSignal): Promise<void> {
    let fetching = this.models.get(model);
    if (!fetching) {
      if (await this.options.store.has(model)) return;
      if (this.holders(model).length === 0) return;
      fetching = this.models.get(model);
    }
    if (!fetching) {
      const transfer: Transfer = {
        info: { model, digest: "", peer: null, completedBytes: 0, totalBytes: 0, startedAt: new Date().toISOString() },
        waiting: 0,
      };
      const promise = this.fetchModel(model, transfer).finally(() => this.models.delete(model));
      promise.catch(() => undefined);
      fetching = { promise, transfer };
      this.models.set(model, fetching);
    }
    const { promise, transfer } = fetching;
    transfer.waiting++;
    try {
      await new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(closed());
        const onAbort = () => reject(closed());
        signal?.addEventListener("abort", onAbort, { once: true });
        promise.then(resolve, reject).finally(() => signal?.removeEventListener("abort", onAbort));
      });
    } finally {
      transfer.waiting--;
    }
  }

  /** Transfers in progress (for `GET /api/cluster`). */
  transfers(): ClusterBlobTransfer[] {
    return [...this.models.values()].map((m) => ({ ...m.transfer.info }));
  }

  /** Models being fetched, with their size when known and the requests waiting (published as loading). */
  inProgress(): Array<{ model: string; bytes: number; waiting: number }> {
    return [...this.models.values()].map((m) => ({
      model: m.transfer.info.model,
      bytes: m.transfer.info.totalBytes,
      waiting: m.transfer.waiting,
    }));
  }

  /** Stops every fetch (their partial files stay for resume). */
  stop(): void {
    this.stopping.abort(closed());
  }

  private holders(model: string): BlobSource[] {
    const { nodes, self, times } = this.options;
    return orderBlobSources({ model }, nodes(), self, this.notes.snapshot(), times, Date.now());
  }

  private async fetchModel(model: string, transfer: Transfer): Promise<void> {
    const { logger, store } = this.options;
    const signal = this.stopping.signal;
    const asked = new Set<string>();
    const reasons: string[] = [];
    let manifest: Manifest | undefined;
    let manifestPeer: BlobSource | undefined;
    for (;;) {
      const peer = orderBlobSources(
        { model },
        this.options.nodes(),
        this.options.self,
        this.notes.snapshot(),
        this.options.times,
        Date.now(),
        asked,
      )[0];
      if (!peer) break;
      asked.add(peer.name);
      try {
        manifest = await this.client.manifest(peer, model, signal);
        manifestPeer = peer;
        break;
      } catch (error) {
        if (signal.aborted) throw closed();
        this.notes.failed(peer.name);
        reasons.push(`${peer.name}: ${(error as Error).message}`);
        logger.warn({ model, peer: peer.name, err: error }, "a peer could not send a model's manifest");
      }
    }
    if (manifest) {
      const blobs = manifestBlobs(manifest);
      transfer.info.digest = manifest.model.digest;
      transfer.info.totalBytes = blobs.reduce((n, b) => n + b.size, 0);
      logger.info({ model, bytes: transfer.info.totalBytes }, "fetching a model from peers");
      const releases: Array<() => void> = [];
      try {
        const refs: BlobRef[] = [];
        let done = 0;
        for (const blob of blobs) {
          const { ref, release } = await store.acquireBlob(
            blob.digest,
            signal,
            (event) => {
              if (event.completed !== undefined) transfer.info.completedBytes = done + event.completed;
            },
            (inner, emit) => this.fromPeers(blob, manifestPeer, transfer, inner, emit),
          );
          releases.push(release);
          refs.push(ref);
          done += blob.size;
          transfer.info.completedBytes = done;
        }
        const adapters = manifest.adapters.length;
        await store.register(model, {
          model: refs[0]!,
          adapters: refs.slice(1, 1 + adapters),
          projectors: refs.slice(1 + adapters),
          definition: manifest.definition,
          ...(manifest.origin ? { origin: manifest.origin } : {}),
          ...(manifest.quantization ? { quantization: manifest.quantization } : {}),
        });
        logger.info({ model, digest: manifest.model.digest }, "model fetched from peers");
        return;
      } catch (error) {
        if (signal.aborted) throw closed();
        reasons.push((error as Error).message);
        logger.warn({ model, err: error }, "no peer could send the model's blobs");
      } finally {
        for (const release of releases) release();
      }
    }
    await this.fromOrigin(model, manifest, transfer, reasons, signal);
  }

  /**
   * One blob from the peers that publish it, best first (else the peer that sent the manifest); a corrupt or failing
   * peer is noted and the next one asked.
   */
  private async fromPeers(
    blob: BlobRef,
    fallback: BlobSource | undefined,
    transfer: Transfer,
    signal: AbortSignal,
    emit: FetchBlobJob["emit"],
  ): Promise<{ ref: BlobRef; unpin: () => void }> {
    const { logger, store } = this.options;
    const asked = new Set<string>();
    const reasons: string[] = [];
    for (;;) {
      const peer =
        orderBlobSources(
          { digest: blob.digest },
          this.options.nodes(),
          this.options.self,
          this.notes.snapshot(),
          this.options.times,
          Date.now(),
          asked,
        )[0] ?? (fallback && !asked.has(fallback.name) ? fallback : undefined);
      if (!peer) break;
      asked.add(peer.name);
      transfer.info.peer = peer.name;
      const attempt = this.whilePeerLives(peer.name, signal);
      try {
        return await store.fetchBlob({
          url: peerBlobUrl(blob.digest),
          what: `blob ${blob.digest.slice(7, 19)} from node ${peer.name}`,
          scope: { endpoint: PEER_VIRTUAL_ORIGIN },
          hub: false,
          expectedDigest: blob.digest,
          expectedSize: blob.size,
          fetch: this.client.fetchFrom(peer, attempt.signal),
          tuning: PEER_TUNING,
          signal: attempt.signal,
          emit,
          label: blob.digest,
        });
      } catch (error) {
        if (signal.aborted) throw closed();
        const corrupt = isLlmosError(error) && error.details?.actual !== undefined;
        if (corrupt) this.notes.corrupt(peer.name, blob.digest);
        else this.notes.failed(peer.name);
        reasons.push(`${peer.name}: ${(error as Error).message}`);
        logger.warn(
          { peer: peer.name, digest: blob.digest, corrupt, err: error },
          corrupt
            ? "a peer sent a blob whose sha256 does not match: discarded, asking another peer"
            : "a blob transfer from a peer failed: asking another peer (resuming)",
        );
      } finally {
        attempt.done();
      }
    }
    throw new LlmosError(
      "unavailable",
      `no peer could send blob ${blob.digest} (${reasons.join("; ") || "none has it"})`,
    );
  }

  /** A signal that aborts with `parent`, or when `peer` stops being a healthy member. */
  private whilePeerLives(peer: string, parent: AbortSignal): { signal: AbortSignal; done: () => void } {
    const controller = new AbortController();
    const onParent = () => controller.abort(parent.reason);
    parent.addEventListener("abort", onParent, { once: true });
    const watch = setInterval(() => {
      const n = this.options.nodes().find((x) => x.name === peer);
      const alive =
        n !== undefined &&
        isHealthy(
          { name: n.name, state: n.state, epoch: n.epoch, heartbeatAgeMs: n.heartbeatAgeMs, lockHeld: n.lockHeld },
          // Given up on only past the dead-after interval (or when its session ended), as forwarding does.
          { heartbeatMs: this.options.times.deadAfterMs / 2, deadAfterMs: this.options.times.deadAfterMs },
        );
      if (!alive) controller.abort(new Error(`node ${peer} is gone`));
    }, LIVENESS_POLL_MS);
    watch.unref();
    return {
      signal: controller.signal,
      done: () => {
        clearInterval(watch);
        parent.removeEventListener("abort", onParent);
      },
    };
  }

  /** The fallback: pull the model from where it came from, or fail clearly. */
  private async fromOrigin(
    model: string,
    manifest: Manifest | undefined,
    transfer: Transfer,
    reasons: string[],
    signal: AbortSignal,
  ): Promise<void> {
    const source = (manifest && pullSourceOf(manifest)) ?? originOf(model, this.options.nodes());
    if (!source)
      throw new LlmosError(
        "unavailable",
        `model ${model} is stored on other nodes but none could send it (${reasons.join("; ") || "none answered"}), ` +
          "and it records no origin to pull it from",
        { model },
      );
    this.options.logger.warn({ model, source }, "no peer could send the model: pulling it from its origin");
    transfer.info.peer = "origin";
    await this.options.store.pull(source, {
      name: model,
      signal,
      onProgress: (event) => {
        if (event.total !== undefined) transfer.info.totalBytes = event.total;
        if (event.completed !== undefined) transfer.info.completedBytes = event.completed;
      },
    });
  }
}

function closed(): LlmosError {
  return new LlmosError("client_closed", "stopped waiting for the model's transfer");
}
