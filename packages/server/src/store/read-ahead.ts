import { open } from "node:fs/promises";

/** Read size: large enough that a multi-GB model file reads at disk speed, small enough to stay off the heap. */
const CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Reads `paths` from start to end and throws the bytes away, so that the kernel's page cache holds them and a
 * model load soon after maps them without waiting for the disk (llama.cpp mmaps model files). The page cache is
 * reclaimable memory: this charges nothing to the memory budget. `signal` stops it between chunks.
 */
export async function readThroughPageCache(paths: readonly string[], signal?: AbortSignal): Promise<number> {
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  let total = 0;
  for (const path of paths) {
    const file = await open(path, "r");
    try {
      for (;;) {
        signal?.throwIfAborted();
        const { bytesRead } = await file.read(buffer, 0, CHUNK_BYTES, null);
        if (bytesRead === 0) break;
        total += bytesRead;
      }
    } finally {
      await file.close();
    }
  }
  return total;
}
