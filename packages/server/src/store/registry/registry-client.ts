import { LlmosError } from "../../errors.js";
import { withRetries, type DownloadTuning } from "../pull/download.js";
import { RetryableError, type AuthScope } from "../pull/http.js";
import { apiHost, type RegistryCredential } from "./credentials.js";
import {
  MANIFEST_ACCEPT,
  MAX_MANIFEST_BYTES,
  parseOciManifest,
  sha256Digest,
  type OciDescriptor,
  type OciManifest,
} from "./oci-manifest.js";
import { readLimited } from "./read-limited.js";
import { RegistryAuth } from "./registry-auth.js";
import type { UrlPolicy } from "../pull/url-policy.js";

/** How to reach one registry. */
export interface RegistryClientOptions {
  /** `host[:port]` as written in references. */
  registry: string;
  /** `https` unless the caller allows plain http (the URL policy still decides). */
  scheme: "https" | "http";
  credential: RegistryCredential | undefined;
  policy: UrlPolicy;
  fetch: typeof fetch;
  signal: AbortSignal;
  tuning: DownloadTuning;
}

/** A manifest as fetched: parsed, with its digest and exact bytes. */
export interface FetchedManifest {
  manifest: OciManifest;
  digest: string;
  bytes: Buffer;
}

interface RequestSpec {
  method: string;
  /** A path on the registry (`/v2/...`) or an absolute URL (an upload location). */
  path: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** Access scope, e.g. `repository:library/x:pull`. */
  scope: string;
  /** For messages: `library/x:1b`. */
  what: string;
  /** Follow redirects (blob reads); otherwise a 3xx is returned. */
  follow?: boolean;
}

/** `repository:{repo}:pull` or `...:pull,push`. */
export function accessScope(repository: string, push = false): string {
  return `repository:${repository}:${push ? "pull,push" : "pull"}`;
}

/** The OCI error code of a registry's error body (`MANIFEST_UNKNOWN`), never the registry's free text. */
async function errorCode(response: Response): Promise<string | undefined> {
  try {
    const body = JSON.parse((await readLimited(response, 64 * 1024)).toString("utf8")) as {
      errors?: Array<{ code?: unknown }>;
    };
    const code = body?.errors?.[0]?.code;
    return typeof code === "string" && /^[A-Z_]{1,40}$/.test(code) ? code : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A client of the OCI distribution API for one registry: bearer-token challenges answered and retried, redirects
 * followed by hand (every URL through the policy, authorization only to the registry's own origin), 5xx and network
 * errors retried with backoff, failures mapped to clear errors that never echo the registry's response text.
 */
export class RegistryClient {
  readonly base: string;
  readonly auth: RegistryAuth;

  constructor(readonly options: RegistryClientOptions) {
    this.base = `${options.scheme}://${apiHost(options.registry)}`;
    this.auth = new RegistryAuth({
      host: options.registry,
      base: this.base,
      credential: options.credential,
      fetch: options.fetch,
      policy: options.policy,
      signal: options.signal,
    });
  }

  /** Sends a request, answering one auth challenge. Errors: see {@link RegistryClient.failure}. */
  async request(spec: RequestSpec): Promise<Response> {
    let url = new URL(spec.path, this.base);
    await this.options.policy(url, "request");
    const origin = new URL(this.base).origin;
    let challenged = false;
    for (let hop = 0; hop <= 10; hop++) {
      const authorization = url.origin === origin ? this.auth.header(spec.scope) : undefined;
      let response: Response;
      try {
        response = await this.options.fetch(url, {
          method: spec.method,
          headers: { ...spec.headers, ...(authorization ? { authorization } : {}) },
          ...(spec.body !== undefined ? { body: spec.body } : {}),
          redirect: "manual",
          signal: this.options.signal,
        });
      } catch (error) {
        if (this.options.signal.aborted) throw error;
        throw new RetryableError(`cannot reach ${url.host}: ${(error as Error).message}`, undefined, { cause: error });
      }
      if (response.status === 401 && url.origin === origin && !challenged) {
        challenged = true;
        await response.body?.cancel();
        if (await this.auth.answer(response.headers.get("www-authenticate"), spec.scope)) {
          hop--;
          continue;
        }
        throw await this.failure(response, spec.what);
      }
      const location = response.headers.get("location");
      if (spec.follow && response.status >= 300 && response.status < 400 && location) {
        await response.body?.cancel();
        const next = new URL(location, url);
        await this.options.policy(next, "redirect", url);
        url = next;
        continue;
      }
      return response;
    }
    throw new LlmosError("upstream_error", `${spec.what}: too many redirects`);
  }

  /** A clear error for a failed response (5xx and 429 are retryable). Reads only the OCI error code of the body. */
  async failure(response: Response, what: string): Promise<Error> {
    const status = response.status;
    if (status === 429 || status >= 500) {
      await response.body?.cancel();
      const retryAfter = Number(response.headers.get("retry-after"));
      return new RetryableError(
        `registry ${this.options.registry}: HTTP ${status} for ${what}`,
        Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined,
      );
    }
    const code = await errorCode(response);
    const details = { upstreamStatus: status, ...(code ? { registryCode: code } : {}) };
    if (status === 404) {
      const why = code === "NAME_UNKNOWN" ? "no such repository" : code === "MANIFEST_UNKNOWN" ? "no such tag" : "";
      return new LlmosError(
        "not_found",
        `not found in registry ${this.options.registry}: ${what}${why ? ` (${why})` : ""}`,
        details,
      );
    }
    if (status === 401 || status === 403) {
      return new LlmosError(
        "forbidden",
        `registry ${this.options.registry} refused access to ${what} (HTTP ${status}${code ? ` ${code}` : ""}); ` +
          (this.options.credential
            ? "the credentials llmos has for it are not enough"
            : "set credentials in LLMOS_OCI_AUTH or with docker login"),
        details,
      );
    }
    return new LlmosError(
      "upstream_error",
      `registry ${this.options.registry} answered HTTP ${status}${code ? ` ${code}` : ""} for ${what}`,
      details,
    );
  }

  /** A request retried on 5xx/429/network errors (at most `retries` times), that must answer 2xx (or `accept`). */
  async expect(spec: RequestSpec, accept: number[] = [], retries = this.options.tuning.retries): Promise<Response> {
    const tuning = { ...this.options.tuning, retries: Math.min(retries, this.options.tuning.retries) };
    return withRetries(tuning, this.options.signal, async () => {
      const response = await this.request(spec);
      if (response.ok || accept.includes(response.status)) return response;
      throw await this.failure(response, spec.what);
    });
  }

  /**
   * Fetches a manifest by tag or digest, negotiating the OCI or Docker v2 media type. Checks the body against the
   * digest asked for, and against `Docker-Content-Digest` when the registry sends one.
   */
  async getManifest(repository: string, reference: string, what: string): Promise<FetchedManifest> {
    // One retry: a registry that cannot be reached at all is reported at once (the blob downloads retry more).
    const response = await this.expect(
      {
        method: "GET",
        path: `/v2/${repository}/manifests/${reference}`,
        headers: { accept: MANIFEST_ACCEPT },
        scope: accessScope(repository),
        what,
      },
      [],
      1,
    );
    const bytes = await readLimited(response, MAX_MANIFEST_BYTES, `the manifest of ${what}`);
    const digest = sha256Digest(bytes);
    const announced = response.headers.get("docker-content-digest");
    if ((reference.startsWith("sha256:") && digest !== reference) || (announced && announced !== digest)) {
      throw new LlmosError(
        "upstream_error",
        `the manifest of ${what} hashes to ${digest}, not ${reference.startsWith("sha256:") ? reference : announced}`,
      );
    }
    return { manifest: parseOciManifest(bytes, response.headers.get("content-type"), what), digest, bytes };
  }

  /** Reads a small blob whole (a template, parameters), checking its size and digest. */
  async readBlob(repository: string, layer: OciDescriptor, limit: number, what: string): Promise<Buffer> {
    if (layer.size > limit) {
      throw new LlmosError("upstream_error", `${what}: the layer is ${layer.size} bytes, more than ${limit}`);
    }
    const response = await this.expect({
      method: "GET",
      path: `/v2/${repository}/blobs/${layer.digest}`,
      scope: accessScope(repository),
      what,
      follow: true,
    });
    const bytes = await readLimited(response, limit, what);
    if (sha256Digest(bytes) !== layer.digest) {
      throw new LlmosError(
        "upstream_error",
        `${what}: sha256 mismatch: the manifest says ${layer.digest}, the data hashes to ${sha256Digest(bytes)}`,
      );
    }
    return bytes;
  }

  /**
   * What the download code needs to fetch blobs of `repository`: the registry's origin gets the current
   * authorization (renewed on a 401), every URL goes through the policy, redirects to storage hosts get nothing.
   */
  blobScope(repository: string): AuthScope {
    const scope = accessScope(repository);
    return {
      endpoint: this.base,
      authorization: () => this.auth.header(scope),
      refresh: (response) => this.auth.answer(response.headers.get("www-authenticate"), scope),
      checkUrl: (url, hop, from) => this.options.policy(url, hop, from),
    };
  }

  /** URL of a blob (the download code probes and follows it). */
  blobUrl(repository: string, digest: string): string {
    return `${this.base}/v2/${repository}/blobs/${digest}`;
  }
}
