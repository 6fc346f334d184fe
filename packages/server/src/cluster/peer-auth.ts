/**
 * Node-to-node calls are signed with the cluster secret (HMAC-SHA256 over the method, path, sender, time, the
 * request's fence and forwarded identity, and the body's hash). The secret itself never travels, so it cannot be
 * replayed from a log, and it is not an API key: a browser can neither send it nor make a signature (the headers are
 * custom, a cross-origin request with them needs a preflight llmos never grants, and a request carrying an `Origin`
 * is refused as a peer call). A signature is valid for 60 s; a forwarded request's fence can be claimed only once.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { LlmosError } from "../errors.js";

export const PEER_HEADERS = {
  node: "x-llmos-peer-node",
  time: "x-llmos-peer-time",
  signature: "x-llmos-peer-signature",
  /** `<request uuid>:<attempt>` of a forwarded request. */
  fence: "x-llmos-fence",
  /** The id of the API key the receiving node authenticated (absent: no key). */
  key: "x-llmos-forwarded-key",
  /** The client's address at the receiving node (for fair queuing by tenant). */
  forwardedFor: "x-llmos-forwarded-for",
} as const;

/** How far a peer's clock and the network may put a signature's time off. */
export const PEER_SIGNATURE_WINDOW_MS = 60_000;

export interface PeerCall {
  method: string;
  /** Path and query, as sent. */
  path: string;
  node: string;
  time: number;
  fence?: string | undefined;
  keyId?: string | undefined;
  forwardedFor?: string | undefined;
  /** The body as sent (undefined: none). */
  body?: string | Buffer | undefined;
}

/** What a verified peer call says. */
export interface VerifiedPeer {
  node: string;
  fence: string | undefined;
  keyId: string | undefined;
  forwardedFor: string | undefined;
}

function canonical(c: PeerCall): string {
  const bodyHash = createHash("sha256")
    .update(c.body ?? "")
    .digest("hex");
  return [
    "llmos-peer-v1",
    c.method.toUpperCase(),
    c.path,
    c.node,
    String(c.time),
    c.fence ?? "",
    c.keyId ?? "",
    c.forwardedFor ?? "",
    bodyHash,
  ].join("\n");
}

function sign(secret: string, call: PeerCall): string {
  return createHmac("sha256", secret).update(canonical(call)).digest("hex");
}

/** The headers of a signed peer call. */
export function signPeerCall(secret: string, call: PeerCall): Record<string, string> {
  return {
    [PEER_HEADERS.node]: call.node,
    [PEER_HEADERS.time]: String(call.time),
    [PEER_HEADERS.signature]: sign(secret, call),
    ...(call.fence ? { [PEER_HEADERS.fence]: call.fence } : {}),
    ...(call.keyId ? { [PEER_HEADERS.key]: call.keyId } : {}),
    ...(call.forwardedFor ? { [PEER_HEADERS.forwardedFor]: call.forwardedFor } : {}),
  };
}

type Headers = Record<string, string | string[] | undefined>;

function one(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** True when a request claims to be a peer call (it carries the peer headers). */
export function isPeerCall(headers: Headers): boolean {
  return one(headers, PEER_HEADERS.node) !== undefined || one(headers, PEER_HEADERS.signature) !== undefined;
}

/**
 * Checks a peer call's signature; `body` undefined checks the headers only (with the hash of an empty body, as a
 * GET is signed). Throws `unauthorized` (one message for every reason) when it does not verify, is too old, or
 * comes from a browser.
 */
export function verifyPeerCall(
  secret: string,
  headers: Headers,
  request: { method: string; path: string; body?: string | Buffer | undefined },
  now = Date.now(),
): VerifiedPeer {
  const refuse = () => new LlmosError("unauthorized", "invalid peer signature");
  const node = one(headers, PEER_HEADERS.node);
  const time = Number(one(headers, PEER_HEADERS.time));
  const signature = one(headers, PEER_HEADERS.signature);
  if (!node || !signature || !Number.isSafeInteger(time) || !/^[0-9a-f]{64}$/.test(signature)) throw refuse();
  // Browsers add Origin to cross-origin (and to every POST) requests; peers never send one.
  if (one(headers, "origin") !== undefined) throw refuse();
  if (Math.abs(now - time) > PEER_SIGNATURE_WINDOW_MS) throw refuse();
  const call: PeerCall = {
    method: request.method,
    path: request.path,
    node,
    time,
    fence: one(headers, PEER_HEADERS.fence),
    keyId: one(headers, PEER_HEADERS.key),
    forwardedFor: one(headers, PEER_HEADERS.forwardedFor),
    body: request.body,
  };
  const expected = Buffer.from(sign(secret, call), "hex");
  if (!timingSafeEqual(expected, Buffer.from(signature, "hex"))) throw refuse();
  return { node, fence: call.fence, keyId: call.keyId, forwardedFor: call.forwardedFor };
}
