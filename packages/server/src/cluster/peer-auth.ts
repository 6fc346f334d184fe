/**
 * Node-to-node calls are signed with the cluster secret (HMAC-SHA256 over the method, path, sender, time, the
 * request's fence and forwarded identity, and the body's hash). The headers are checked as the request arrives,
 * the body once it has been read (the hash travels in a header the signature covers, so `onRequest` can verify the
 * signature before the body exists, and `checkPeerBody` then holds the body to that hash before anything uses it).
 * The secret itself never travels, so it cannot be
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
  /** sha256 (hex) of the body as sent ({@link peerBody}; of the empty string when there is none). */
  bodyHash: "x-llmos-peer-body-sha256",
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
  /** The body as sent (undefined: none): {@link peerBody} of the JSON the call carries. */
  body?: string | undefined;
}

/** What a verified peer call says. */
export interface VerifiedPeer {
  node: string;
  fence: string | undefined;
  keyId: string | undefined;
  forwardedFor: string | undefined;
  /** The body's hash the signature covers: {@link checkPeerBody} holds the body to it. */
  bodyHash: string;
}

/**
 * A call's body as the signer sends it and as the receiver re-serializes what it parsed: JSON. A string that
 * `JSON.stringify` wrote parses and serializes back to the same string, so both sides hash the same bytes.
 */
export function peerBody(body: unknown): string | undefined {
  return body === undefined ? undefined : JSON.stringify(body);
}

function hashOf(body: string | undefined): string {
  return createHash("sha256")
    .update(body ?? "")
    .digest("hex");
}

function canonical(c: Omit<PeerCall, "body">, bodyHash: string): string {
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

function sign(secret: string, call: Omit<PeerCall, "body">, bodyHash: string): string {
  return createHmac("sha256", secret).update(canonical(call, bodyHash)).digest("hex");
}

/** The headers of a signed peer call. */
export function signPeerCall(secret: string, call: PeerCall): Record<string, string> {
  const bodyHash = hashOf(call.body);
  return {
    [PEER_HEADERS.node]: call.node,
    [PEER_HEADERS.time]: String(call.time),
    [PEER_HEADERS.bodyHash]: bodyHash,
    [PEER_HEADERS.signature]: sign(secret, call, bodyHash),
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
 * Checks a peer call's headers and signature (over the body hash its header claims; {@link checkPeerBody} checks
 * the body once it is read). Throws `unauthorized` (one message for every reason) when it does not verify, is too
 * old, or comes from a browser.
 */
export function verifyPeerCall(
  secret: string,
  headers: Headers,
  request: { method: string; path: string },
  now = Date.now(),
): VerifiedPeer {
  const node = one(headers, PEER_HEADERS.node);
  const time = Number(one(headers, PEER_HEADERS.time));
  const signature = one(headers, PEER_HEADERS.signature);
  const bodyHash = one(headers, PEER_HEADERS.bodyHash);
  const hex64 = /^[0-9a-f]{64}$/;
  if (
    !node ||
    !signature ||
    !bodyHash ||
    !Number.isSafeInteger(time) ||
    !hex64.test(signature) ||
    !hex64.test(bodyHash)
  )
    throw refused();
  // Browsers add Origin to cross-origin (and to every POST) requests; peers never send one.
  if (one(headers, "origin") !== undefined) throw refused();
  if (Math.abs(now - time) > PEER_SIGNATURE_WINDOW_MS) throw refused();
  const call = {
    method: request.method,
    path: request.path,
    node,
    time,
    fence: one(headers, PEER_HEADERS.fence),
    keyId: one(headers, PEER_HEADERS.key),
    forwardedFor: one(headers, PEER_HEADERS.forwardedFor),
  };
  const expected = Buffer.from(sign(secret, call, bodyHash), "hex");
  if (!timingSafeEqual(expected, Buffer.from(signature, "hex"))) throw refused();
  return { node, fence: call.fence, keyId: call.keyId, forwardedFor: call.forwardedFor, bodyHash };
}

/**
 * Holds a verified call's body (as parsed: undefined when there is none) to the hash its signature covers. Throws
 * `unauthorized` when the body is not the one that was signed (changed or swapped on the way).
 */
export function checkPeerBody(peer: Pick<VerifiedPeer, "bodyHash">, body: unknown): void {
  const actual = Buffer.from(hashOf(peerBody(body)), "hex");
  if (!timingSafeEqual(actual, Buffer.from(peer.bodyHash, "hex"))) throw refused();
}

function refused(): LlmosError {
  return new LlmosError("unauthorized", "invalid peer signature");
}
