import os from "node:os";
import net from "node:net";
import type { FastifyRequest } from "fastify";
import type { LlmosConfig } from "../config/config.js";
import { LlmosError } from "../errors.js";
import { isLoopbackAddress } from "../security/index.js";

/** A `Host` header split into its parts (hostname lower-case, IPv6 without brackets; port as written or null). */
export interface ParsedHost {
  hostname: string;
  port: number | null;
}

/** Parses `name`, `name:port`, `1.2.3.4:port`, `[::1]:port`; undefined when it is not a valid host. */
export function parseHostHeader(value: string): ParsedHost | undefined {
  const text = value.trim();
  if (text === "" || /[\s/?#@\\]/.test(text)) return undefined;
  let url: URL;
  try {
    url = new URL(`http://${text}`);
  } catch {
    return undefined;
  }
  const hostname = url.hostname
    .replace(/^\[|\]$/g, "")
    .toLowerCase()
    .replace(/\.$/, "");
  return { hostname, port: url.port === "" ? null : Number(url.port) };
}

/** True when `hostname` matches a pattern: exact, `*.example.com` (any subdomain), or `*`. */
export function hostMatches(hostname: string, patterns: readonly string[]): boolean {
  const h = hostname.toLowerCase();
  return patterns.some((raw) => {
    const p = raw.toLowerCase().replace(/\.$/, "");
    if (p === "*") return true;
    if (p.startsWith("*.")) return h.endsWith(p.slice(1)) && h.length > p.length - 1;
    return h === p.replace(/^\[|\]$/g, "");
  });
}

const WILDCARD_BINDS = new Set(["0.0.0.0", "::", "0:0:0:0:0:0:0:0", ""]);

/** The addresses of this machine's interfaces (what a wildcard bind listens on). */
function interfaceAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) out.add(a.address.toLowerCase().replace(/%.*$/, ""));
  }
  return out;
}

/**
 * Decides which `Host` headers the daemon answers. A web page can make a browser send requests to 127.0.0.1 under
 * a name the attacker controls (DNS rebinding); refusing names we do not know stops that. Allowed: loopback names
 * (`localhost`, `*.localhost`) and addresses, the address the daemon listens on (any address of this machine for a
 * wildcard bind), and `allowedHosts` (exact names, `*.domain`, `*` for any).
 */
export class HostPolicy {
  readonly #bind: string;
  readonly #allowed: readonly string[];
  #interfaces: { at: number; set: Set<string> } | undefined;

  constructor(config: Pick<LlmosConfig, "host" | "allowedHosts">) {
    this.#bind = config.host.replace(/^\[|\]$/g, "").toLowerCase();
    this.#allowed = config.allowedHosts;
  }

  /** True when a request whose Host header names `hostname` may be served. */
  allows(hostname: string): boolean {
    const h = hostname.toLowerCase();
    if (h === "localhost" || h.endsWith(".localhost")) return true;
    if (isLoopbackAddress(h)) return true;
    if (h === this.#bind) return true;
    if (WILDCARD_BINDS.has(this.#bind) && net.isIP(h) !== 0 && this.#localAddresses().has(h)) return true;
    return hostMatches(h, this.#allowed);
  }

  #localAddresses(): Set<string> {
    // Interfaces come and go (DHCP, VPN): re-read at most every 10 s.
    const now = Date.now();
    if (!this.#interfaces || now - this.#interfaces.at > 10_000)
      this.#interfaces = { at: now, set: interfaceAddresses() };
    return this.#interfaces.set;
  }
}

/**
 * `onRequest` hook refusing requests whose `Host` header is not allowed (403 `host_not_allowed`). A request
 * without a Host header (HTTP/1.0 tools) is let through: browsers always send one.
 */
export function hostGuard(policy: HostPolicy) {
  return async (request: FastifyRequest): Promise<void> => {
    const header = request.headers.host;
    if (header === undefined) return;
    const parsed = parseHostHeader(header);
    if (parsed && policy.allows(parsed.hostname)) return;
    throw new LlmosError(
      "host_not_allowed",
      `Host ${JSON.stringify(header.slice(0, 256))} is not allowed: llmos answers requests for loopback names, the ` +
        `address it listens on and the names in LLMOS_ALLOWED_HOSTS`,
    );
  };
}
