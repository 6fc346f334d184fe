import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * API key wire format: `llmos_<id>_<secret>`.
 * - `id` is 12 lowercase hex characters: public, names the key in lists, logs, usage and audit.
 * - `secret` is 32 random bytes in base64url (43 characters, may itself contain `_` and `-`).
 * Only a hash of the secret is stored.
 */
export const KEY_PREFIX = "llmos_";

const ID_RE = /^[0-9a-f]{12}$/;
const SECRET_RE = /^[A-Za-z0-9_-]{43}$/;

/** A fresh, unguessable key id. */
export function newKeyId(): string {
  return randomBytes(6).toString("hex");
}

/** A fresh secret: 256 bits from the OS CSPRNG. */
export function newSecret(): string {
  return randomBytes(32).toString("base64url");
}

/** The full key string handed to the user once. */
export function formatKey(id: string, secret: string): string {
  return `${KEY_PREFIX}${id}_${secret}`;
}

/** Splits a presented key into id and secret; `undefined` when it is not shaped like an llmos key. */
export function parseKey(presented: string): { id: string; secret: string } | undefined {
  if (!presented.startsWith(KEY_PREFIX)) return undefined;
  const rest = presented.slice(KEY_PREFIX.length);
  const id = rest.slice(0, 12);
  const secret = rest.slice(13);
  if (rest[12] !== "_" || !ID_RE.test(id) || !SECRET_RE.test(secret)) return undefined;
  return { id, secret };
}

/**
 * Hash stored for a secret. A single SHA-256 is enough here (no salt, no slow KDF): the secret is
 * 256 bits of CSPRNG output, not a human password, so there is no dictionary to attack and a brute
 * force of 2^256 candidates is out of reach however fast each guess is. Slow KDFs (scrypt, argon2)
 * protect low-entropy secrets and would only add latency to every request.
 */
export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/** Constant-time check of a presented secret against a stored hash (hex). */
export function secretMatches(secret: string, storedHashHex: string): boolean {
  const a = Buffer.from(hashSecret(secret), "hex");
  const b = Buffer.from(storedHashHex, "hex");
  // Both are SHA-256 digests, so lengths only differ for a corrupt row; timingSafeEqual needs equal lengths.
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Constant-time equality of two arbitrary strings (compares their SHA-256 digests). */
export function constantTimeEquals(a: string, b: string): boolean {
  const da = createHash("sha256").update(a, "utf8").digest();
  const db = createHash("sha256").update(b, "utf8").digest();
  return timingSafeEqual(da, db);
}
