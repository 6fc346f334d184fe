import { readFileSync } from "node:fs";
import { materialize, readGguf, typed, writeGguf, type GgufValue } from "@llmos/gguf";

/** Writes a copy of the GGUF model `src` to `dst` with metadata added or replaced (e.g. a chat template). */
export async function writeGgufWith(src: string, dst: string, extra: Record<string, GgufValue>): Promise<void> {
  const file = await readGguf(src);
  const bytes = readFileSync(src);
  const metadata: Record<string, ReturnType<typeof typed> | GgufValue> = {};
  for (const key of Object.keys(file.metadata))
    metadata[key] = typed(file.metadataTypes[key]!, materialize(file.metadata[key]!));
  Object.assign(metadata, extra);
  await writeGguf(dst, {
    metadata,
    tensors: file.tensors.map((t) => ({
      name: t.name,
      dims: t.dims,
      type: t.type,
      data: bytes.subarray(t.offset, t.offset + t.size),
    })),
  });
}
