import { findCredential, type CredentialSources, type RegistryCredential } from "./credentials.js";
import { OLLAMA_REGISTRY, type OciReference } from "./oci-reference.js";
import { PullUrlPolicy, type UrlPolicy } from "../pull/url-policy.js";

/** Without a configured policy: https only (the daemon passes its own, with LLMOS_PULL_ALLOW_HTTP). */
const HTTPS_ONLY: UrlPolicy = new PullUrlPolicy().check;

/** Store-wide settings of registry pulls and pushes. */
export interface RegistryDefaults {
  /**
   * Where names without a registry host go: `host[:port]` (https) or a URL `https://host[:port]` /
   * `http://host[:port]` (config `LLMOS_OCI_REGISTRY`). Default `https://registry.ollama.ai`.
   */
  defaultRegistry?: string;
  /** Credentials per registry (`LLMOS_OCI_AUTH`, Docker's config.json). */
  credentials?: CredentialSources;
  /** Checks every URL fetched (the store's pull URL policy). Default: https only. */
  policy?: UrlPolicy;
  /** Bytes per upload PATCH of a push. Default 16 MiB. */
  uploadChunkBytes?: number;
}

/** A registry resolved for one pull or push. */
export interface RegistryTarget {
  /** `host[:port]`. */
  host: string;
  scheme: "https" | "http";
  /** True when the reference named no registry (or the default one). */
  isDefault: boolean;
  defaultHost: string;
  credential: RegistryCredential | undefined;
  policy: UrlPolicy;
}

/** `registry.ollama.ai`, `https://mirror:5000`, `http://127.0.0.1:5000` -> host and scheme. */
export function parseRegistrySetting(value: string | undefined): { host: string; scheme: "https" | "http" } {
  const text = (value ?? OLLAMA_REGISTRY).trim().replace(/\/+$/, "");
  const url = new URL(/^[a-z]+:\/\//i.test(text) ? text : `https://${text}`);
  return { host: url.host.toLowerCase(), scheme: url.protocol === "http:" ? "http" : "https" };
}

/**
 * Resolves where a reference goes: the default registry (with its configured scheme) when it names none or the
 * default host; otherwise https, or plain http when the caller asked for `insecure` (the URL policy still refuses
 * http to hosts it does not allow).
 */
export async function resolveRegistry(
  ref: Pick<OciReference, "registry">,
  defaults: RegistryDefaults | undefined,
  insecure: boolean,
): Promise<RegistryTarget> {
  const fallback = parseRegistrySetting(defaults?.defaultRegistry);
  const isDefault = ref.registry === undefined || ref.registry === fallback.host;
  const host = isDefault ? fallback.host : ref.registry!;
  const scheme = insecure ? "http" : isDefault ? fallback.scheme : "https";
  return {
    host,
    scheme,
    isDefault,
    defaultHost: fallback.host,
    credential: await findCredential(host, defaults?.credentials ?? {}),
    policy: defaults?.policy ?? HTTPS_ONLY,
  };
}
