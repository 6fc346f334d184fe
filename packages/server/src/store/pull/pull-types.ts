/**
 * The types of a pull, apart from the Puller itself: what registry pulls (`registry/registry-pull.ts`) use of it is
 * the `BlobPuller` interface, so they import this file and not `pull.ts` (which imports them).
 */
import type { BlobRef } from "../manifest.js";
import type { RegistryDefaults } from "../registry/registry-target.js";
import type { PullTarget } from "../registrar.js";
import type { DownloadTuning } from "./download.js";
import type { AuthScope } from "./http.js";
import type { PullUrlPolicy } from "./url-policy.js";

/** One progress event of a pull, in Ollama's shape. */
export interface PullProgress {
  status: string;
  digest?: string;
  total?: number;
  completed?: number;
}

/** Options of a pull. */
export interface PullOptions {
  /** Name to register; default `hf.co/{owner}/{repo}:{quant|latest}` or the URL's file name. */
  name?: string;
  /** Hub revision (branch, tag or commit). Default `main`. */
  revision?: string;
  /** Hub base URL. Default: the store's `hub.endpoint`, else `https://huggingface.co`. */
  endpoint?: string;
  /** Hub token (sent to the Hub's origin only). Default: the store's `hub.token`. */
  hfToken?: string;
  onProgress?: (event: PullProgress) => void;
  /** Cancels; the partial download stays for a later resume. */
  signal?: AbortSignal;
  /** Fetch implementation. Default: the global fetch. */
  fetch?: typeof fetch;
  tuning?: Partial<DownloadTuning>;
  /** Registry pulls: speak plain http to the registry (Ollama's `insecure`); the URL policy still decides. */
  insecure?: boolean;
}

/** Store-wide defaults for pulls. */
export interface PullDefaults {
  endpoint?: string;
  token?: string;
  tuning?: Partial<DownloadTuning>;
  /** Registry pulls and pushes: default registry, credentials, URL policy. */
  oci?: RegistryDefaults;
  /**
   * Which URLs pulls may fetch and where they may be redirected (every source: Hub, URLs, registries). Default:
   * https only.
   */
  policy?: PullUrlPolicy;
}

/** One blob download: where from, what to expect, how to report. */
export interface FetchBlobJob {
  url: string;
  what: string;
  scope: AuthScope;
  hub: boolean;
  expectedDigest: string | undefined;
  expectedSize: number | undefined;
  fetch: typeof fetch;
  tuning: DownloadTuning;
  signal: AbortSignal;
  emit: (event: PullProgress) => void;
  label: string;
}

/** The shared downloads of a store's pulls, as registry pulls use them. */
export interface BlobPuller {
  readonly store: PullTarget;
  readonly defaults: PullDefaults;
  /**
   * Joins (or starts) the download of `key`; resolves with the blob, kept from gc until `release()`. Two pulls of
   * one blob share one download.
   */
  acquireBlob(
    key: string,
    signal: AbortSignal,
    listener: (event: PullProgress) => void,
    start: (signal: AbortSignal, emit: (event: PullProgress) => void) => Promise<{ ref: BlobRef; unpin: () => void }>,
  ): Promise<{ ref: BlobRef; release: () => void }>;
  /** Probe, download (or reuse), verify, validate and commit one blob. */
  fetchBlob(job: FetchBlobJob): Promise<{ ref: BlobRef; unpin: () => void }>;
}
