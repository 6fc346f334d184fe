import { lookup } from "node:dns/promises";
import net from "node:net";
import { LlmosError } from "../../errors.js";

/** Where an address leads: the public internet, or one of the networks a pull must not be redirected into. */
export type AddressClass = "public" | "loopback" | "private" | "link-local" | "unspecified";

/** Why a URL is about to be fetched: the first request of a step, a redirect's target, or a token endpoint. */
export type FetchHop = "request" | "redirect" | "token";

/**
 * Decides whether a pull (or push) may fetch `url`; rejects to refuse. Every URL a pull source fetches goes through
 * one: the Hub, a plain URL, a registry, each redirect's target, a token endpoint a registry names.
 */
export type UrlPolicy = (url: URL, hop: FetchHop, from?: URL) => void | Promise<void>;

/** Parses `a.b.c.d` into its four numbers. */
function ipv4Parts(a: string): number[] {
  return a.split(".").map(Number);
}

/** The class of an IP address (v4, v6, or v4-mapped v6). */
export function classifyAddress(address: string): AddressClass {
  let a = address
    .toLowerCase()
    .replace(/^\[|\]$/g, "")
    .replace(/%.*$/, "");
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped) a = mapped[1]!;
  if (net.isIPv4(a)) {
    const [x, y] = ipv4Parts(a) as [number, number];
    if (x === 127) return "loopback";
    if (x === 0) return "unspecified";
    if (x === 10 || (x === 172 && y >= 16 && y <= 31) || (x === 192 && y === 168) || (x === 100 && y >= 64 && y <= 127))
      return "private";
    if (x === 169 && y === 254) return "link-local";
    return "public";
  }
  if (net.isIPv6(a)) {
    if (a === "::1") return "loopback";
    if (a === "::") return "unspecified";
    if (/^fe[89ab]/.test(a)) return "link-local";
    if (/^f[cd]/.test(a)) return "private";
    return "public";
  }
  return "public";
}

/** Addresses a host name resolves to (itself when it is an IP literal). */
async function addressesOf(hostname: string): Promise<string[]> {
  const h = hostname.replace(/^\[|\]$/g, "");
  if (net.isIP(h) !== 0) return [h];
  try {
    return (await lookup(h, { all: true, verbatim: true })).map((r) => r.address);
  } catch {
    return []; // the fetch reports the name error
  }
}

/**
 * The network policy of every pull source (Hugging Face, URLs, OCI registries): which URLs a pull may fetch and
 * where it may be redirected. `check` is the {@link UrlPolicy} they all call.
 * - A pull target (`request`) must be `https`; plain `http` only to hosts listed in `LLMOS_PULL_ALLOW_HTTP`
 *   (`host` or `host:port`); URLs with credentials are refused. Refusals are `invalid_reference` (400).
 * - A redirect or token endpoint may not switch from https to http (http only between allowed hosts), and may not
 *   lead to a loopback, link-local, private or unspecified address unless the URL it comes from resolved to that
 *   kind of address (a mirror on the local network may redirect within it; a public server may not bounce the
 *   daemon into it). Refusals are `upstream_error` (502: the server asked for it).
 * Errors name the URL's origin, never what the server answered. Host names are resolved to check them; the fetch
 * resolves again (a name that changes its answer in between is a known limit, see docs/security.md).
 */
export class PullUrlPolicy {
  readonly #allowHttp: readonly string[];

  constructor(options: { allowHttp?: readonly string[] } = {}) {
    this.#allowHttp = (options.allowHttp ?? []).map((h) => h.toLowerCase());
  }

  /** True when `url` may be fetched over plain http. */
  allowsHttp(url: URL): boolean {
    const host = url.hostname.toLowerCase().replace(/^\[|\]$/g, "");
    const withPort = `${host}:${url.port || "80"}`;
    return this.#allowHttp.some((h) => h.replace(/^\[|\]$/g, "") === host || h === withPort || h === url.host);
  }

  /**
   * Checks the URL a pull starts from (a URL reference, the Hub endpoint, a registry).
   * @throws `invalid_reference` for another scheme, credentials in the URL, or http to a host not in
   *   LLMOS_PULL_ALLOW_HTTP.
   */
  checkTarget(target: string | URL): URL {
    const url = typeof target === "string" ? new URL(target) : target;
    const refuse = (why: string): never => {
      throw new LlmosError("invalid_reference", `refusing to pull from ${url.protocol}//${url.host}: ${why}`, {
        url: `${url.protocol}//${url.host}`,
      });
    };
    if (url.username || url.password) refuse("URLs with credentials are not allowed");
    if (url.protocol === "https:") return url;
    if (url.protocol === "http:" && this.allowsHttp(url)) return url;
    return refuse(
      url.protocol === "http:"
        ? "plain http is not allowed; use https, or list the host in LLMOS_PULL_ALLOW_HTTP"
        : `pulls use https, not ${url.protocol.replace(/:$/, "")}`,
    );
  }

  /** The policy every pull source calls for every URL it fetches (see the class). */
  readonly check: UrlPolicy = async (url, hop, from) => {
    if (hop === "request" || from === undefined) {
      this.checkTarget(url);
      return;
    }
    const where = `${url.protocol}//${url.host}`;
    const refuse = (why: string): never => {
      throw new LlmosError("upstream_error", `refusing to follow ${from.host} to ${where} (a ${hop}): ${why}`, {
        url: where,
      });
    };
    if (url.username || url.password) refuse("URLs with credentials are not allowed");
    const allowed = new Set<AddressClass>(["public"]);
    for (const a of await addressesOf(from.hostname)) allowed.add(classifyAddress(a));
    for (const address of await addressesOf(url.hostname)) {
      const kind = classifyAddress(address);
      if (!allowed.has(kind)) refuse(`it is a ${kind} address, and ${from.host} is not on one`);
    }
    if (url.protocol === "https:") return;
    if (url.protocol !== "http:" || !this.allowsHttp(url)) refuse("it is not https");
    if (from.protocol === "https:") refuse("a redirect may not go from https to http");
  };
}
