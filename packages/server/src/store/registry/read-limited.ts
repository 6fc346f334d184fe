import { LlmosError } from "../../errors.js";

/**
 * Reads a response body of at most `limit` bytes (manifests, tokens, small layers), so that a hostile server cannot
 * make the daemon buffer without bound.
 * @throws `upstream_error` when the body is longer (the rest is not read).
 */
export async function readLimited(response: Response, limit: number, what = "the response"): Promise<Buffer> {
  const declared = Number(response.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > limit) {
    await response.body?.cancel();
    throw new LlmosError("upstream_error", `${what} is larger than ${limit} bytes`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  if (!response.body) return Buffer.alloc(0);
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw new LlmosError("upstream_error", `${what} is larger than ${limit} bytes`);
    }
    chunks.push(Buffer.from(value));
  }
  return Buffer.concat(chunks);
}
