import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { LlmosError } from "../errors.js";

const DIGEST = /^sha256[:-]([0-9a-f]{64})$/;

/** True for `sha256:<64 lower-case hex>` (or the file-name form `sha256-<hex>`). */
export function isDigest(value: string): boolean {
  return DIGEST.test(value);
}

/**
 * Normalises a digest to `sha256:<hex>`.
 * @throws LlmosError `invalid_request` when it is not a sha256 digest.
 */
export function normalizeDigest(value: string): string {
  const match = DIGEST.exec(typeof value === "string" ? value : "");
  if (!match) {
    throw new LlmosError("invalid_request", `invalid digest ${JSON.stringify(value)}: expected sha256:<64 hex digits>`);
  }
  return `sha256:${match[1]}`;
}

/** The hex part of a digest. */
export function digestHex(digest: string): string {
  return normalizeDigest(digest).slice("sha256:".length);
}

/** `sha256:<hex>` of a finished hash. */
export function digestOf(hash: Hash): string {
  return `sha256:${hash.digest("hex")}`;
}

/** Hashes a whole file, streaming. */
export async function hashFile(file: string, signal?: AbortSignal): Promise<{ digest: string; size: number }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20, signal })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: digestOf(hash), size };
}
