/**
 * The receiving side of the peer blob routes (http/routes/cluster-peer.ts): signed calls for a model's manifest and
 * for a blob's bytes. Blobs go through the store's downloader (Range resume, size and sha256 checks) with a `fetch`
 * that sends the downloader's requests to one peer: the downloader sees one stable, peer-independent URL per blob,
 * so a partial file begun from one peer resumes from another (its sidecar names that URL, the blob's size and ETag,
 * which is the digest on every peer).
 */
import { LlmosError } from "../errors.js";
import { parseManifest, type Manifest } from "../store/index.js";
import { Throttle, throttleWebStream } from "./blob-throttle.js";
import type { BlobSource } from "./blob-sources.js";
import { signPeerCall } from "./peer-auth.js";

/** Paths of the peer routes. */
export const PEER_BLOB_PATH = "/api/cluster/peer/blobs/";
export const PEER_MANIFEST_PATH = "/api/cluster/peer/manifest";

const MANIFEST_TIMEOUT_MS = 10_000;

/** The origin of the stable URLs the downloader is given; never contacted (`.invalid` cannot resolve). */
export const PEER_VIRTUAL_ORIGIN = "http://llmos-peer.invalid";

/** The stable URL of a blob for the downloader (its partial file's sidecar records it). */
export function peerBlobUrl(digest: string): string {
  return `${PEER_VIRTUAL_ORIGIN}${PEER_BLOB_PATH}${digest}`;
}

export interface PeerClientOptions {
  /** This node's name (the signer). */
  self: string;
  secret: string;
  /** Bytes per second per transfer; <= 0 unlimited. */
  bytesPerSecond: number;
  /** Hears of every body byte received, by peer. */
  onBytes: (peer: string, bytes: number) => void;
  /** The fetch used underneath (tests). */
  fetch?: typeof fetch;
}

export class PeerBlobClient {
  constructor(private readonly options: PeerClientOptions) {}

  /**
   * A `fetch` for the downloader that sends each request for the virtual URL to `peer` as a signed call, with the
   * response body paced to the transfer rate and counted.
   */
  fetchFrom(peer: BlobSource, signal?: AbortSignal): typeof fetch {
    const { self, secret, bytesPerSecond, onBytes } = this.options;
    const doFetch = this.options.fetch ?? fetch;
    const throttle = new Throttle(bytesPerSecond);
    return (async (input: string | URL | Request, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      if (url.origin !== PEER_VIRTUAL_ORIGIN) throw new Error(`not a peer blob URL: ${url.origin}`);
      const path = url.pathname + url.search;
      const method = (init?.method ?? "GET").toUpperCase();
      const headers = {
        ...(init?.headers as Record<string, string> | undefined),
        ...signPeerCall(secret, { method, path, node: self, time: Date.now() }),
      };
      const res = await doFetch(peer.url + path, { ...init, method, headers, redirect: "manual" });
      if (method === "HEAD" || !res.body) return res;
      const body = throttleWebStream(res.body, throttle, (n) => onBytes(peer.name, n), signal);
      return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
    }) as typeof fetch;
  }

  /**
   * The manifest of `model` as `peer` stores it.
   * @throws `model_not_found` (the peer does not have it), `upstream_error` (anything else).
   */
  async manifest(peer: BlobSource, model: string, signal?: AbortSignal): Promise<Manifest> {
    const path = `${PEER_MANIFEST_PATH}?model=${encodeURIComponent(model)}`;
    const headers = signPeerCall(this.options.secret, {
      method: "GET",
      path,
      node: this.options.self,
      time: Date.now(),
    });
    // A peer that stops answering (paused) is given up on; a manifest is a few kilobytes.
    const timeout = AbortSignal.timeout(MANIFEST_TIMEOUT_MS);
    const res = await (this.options.fetch ?? fetch)(peer.url + path, {
      headers,
      redirect: "manual",
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    const text = await res.text();
    if (res.status === 404)
      throw new LlmosError("model_not_found", `node ${peer.name} does not store ${model}`, { model, node: peer.name });
    if (!res.ok)
      throw new LlmosError(
        "upstream_error",
        `node ${peer.name} answered HTTP ${res.status} for the manifest of ${model}`,
      );
    return parseManifest(text, `manifest of ${model} from node ${peer.name}`);
  }
}
