import { LlmosError } from "../../errors.js";

/** Why a URL is about to be fetched: the first request of a step, a redirect's target, or a token endpoint. */
export type FetchHop = "request" | "redirect" | "token";

/**
 * Decides whether a registry pull or push may fetch `url`; throws to refuse. Every URL the registry client fetches
 * goes through one of these (the registry, a redirect's storage host, the token endpoint a challenge names).
 */
export type UrlPolicy = (url: URL, hop: FetchHop, from?: URL) => void;

const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/** True for `localhost`, 127.0.0.0/8 and `[::1]`. */
export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOST.test(hostname);
}

/**
 * The registry client's own minimal policy, in this one place until the pull URL policy of the security work
 * replaces it: https always; plain http only to loopback hosts (test registries, a local mirror); a redirect from a
 * non-loopback host may not lead to a loopback one (a registry must not make the daemon call its own machine).
 * Refusals of the first request are `invalid_reference` (400: the caller asked for it); refusals of a redirect or a
 * token endpoint are `upstream_error` (502: the registry asked for it).
 */
export const minimalUrlPolicy: UrlPolicy = (url, hop, from) => {
  const refuse = (why: string): never => {
    throw new LlmosError(
      hop === "request" ? "invalid_reference" : "upstream_error",
      `refusing to fetch ${url.protocol}//${url.host}${hop === "request" ? "" : ` (a ${hop} the registry named)`}: ${why}`,
      { url: `${url.protocol}//${url.host}` },
    );
  };
  if (url.protocol !== "https:" && url.protocol !== "http:") refuse("only https (and http to loopback) is allowed");
  if (url.username || url.password) refuse("URLs with credentials are not allowed");
  if (url.protocol === "http:" && !isLoopbackHost(url.hostname)) {
    refuse("plain http is only allowed to loopback hosts; use https");
  }
  if (hop !== "request" && from !== undefined && isLoopbackHost(url.hostname) && !isLoopbackHost(from.hostname)) {
    refuse(`${from.host} may not send the daemon to a loopback address`);
  }
};
