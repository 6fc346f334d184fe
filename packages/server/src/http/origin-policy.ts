import type { FastifyRequest } from "fastify";
import { LlmosError } from "../errors.js";
import type { HostPolicy } from "./host-guard.js";
import { parseHostHeader } from "./host-guard.js";

const DEFAULT_PORTS: Readonly<Record<string, number>> = { "http:": 80, "https:": 443 };

/**
 * `*`-wildcard match of `text` against `pattern` (case already folded): the classic two-pointer algorithm that
 * backtracks only to the last star, O(len(text) x len(pattern)) at worst, never exponential like a regex of stars.
 */
export function wildcardMatch(text: string, pattern: string): boolean {
  let t = 0;
  let p = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] !== "*" && pattern[p] === text[t]) {
      t++;
      p++;
    } else if (p < pattern.length && pattern[p] === "*") {
      star = p++;
      mark = t;
    } else if (star !== -1) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === "*") p++;
  return p === pattern.length;
}

/** True when `origin` matches one of `patterns` (OLLAMA_ORIGINS syntax: whole origins, `*` = any run of characters). */
export function originMatches(origin: string, patterns: readonly string[]): boolean {
  const o = origin.toLowerCase().slice(0, 1024);
  return patterns.some((raw) => wildcardMatch(o, raw.trim().toLowerCase().replace(/\/+$/, "")));
}

/**
 * Which browser origins may call the API: the daemon's own (the scheme it serves, a host the Host policy allows,
 * the port the request came to) and the configured list (`LLMOS_ORIGINS`). Requests without `Origin` are not
 * from a browser page and are not this policy's business.
 */
export class OriginPolicy {
  constructor(
    private readonly hosts: HostPolicy,
    private readonly listed: readonly string[],
    private readonly scheme: "http:" | "https:",
  ) {}

  /** True when the configured list allows `origin` (what CORS headers are sent for). */
  listedAllows(origin: string): boolean {
    return this.listed.length > 0 && originMatches(origin, this.listed);
  }

  /** True when a request from `origin` to a daemon addressed as `hostHeader` may be served. */
  allows(origin: string, hostHeader: string | undefined): boolean {
    return this.isOwn(origin, hostHeader) || this.listedAllows(origin);
  }

  private isOwn(origin: string, hostHeader: string | undefined): boolean {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      return false; // "null" (sandboxed frames, file:) and garbage
    }
    if (url.protocol !== this.scheme || url.origin.toLowerCase() !== origin.toLowerCase().replace(/\/+$/, ""))
      return false;
    const host = hostHeader === undefined ? undefined : parseHostHeader(hostHeader);
    if (!host) return false;
    const originPort = url.port === "" ? DEFAULT_PORTS[url.protocol] : Number(url.port);
    const daemonPort = host.port ?? DEFAULT_PORTS[this.scheme];
    const hostname = url.hostname.replace(/^\[|\]$/g, "");
    return originPort === daemonPort && this.hosts.allows(hostname);
  }
}

/**
 * `onRequest` hook: a request carrying an `Origin` the policy does not allow is refused (403
 * `origin_not_allowed`) before anything runs, CORS preflights included. Without it, any page could send
 * body-less or form-encoded POSTs ("simple requests") to the daemon.
 */
export function originGuard(policy: OriginPolicy) {
  return async (request: FastifyRequest): Promise<void> => {
    const origin = request.headers.origin;
    if (origin === undefined) return;
    if (policy.allows(origin, request.headers.host)) return;
    throw new LlmosError(
      "origin_not_allowed",
      `requests from origin ${JSON.stringify(origin.slice(0, 256))} are not allowed; list it in LLMOS_ORIGINS to let ` +
        "that web page call llmos",
    );
  };
}
