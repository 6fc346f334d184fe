import { readFile, rename, writeFile } from "node:fs/promises";
import { locateGgufFields, type GgufField } from "./header-fields.js";
import { parseGgufBuffer } from "./reader.js";
import type { GgufFile } from "./gguf-file.js";
import type { GgufValue } from "./types.js";
import { materialize } from "./values.js";
import { encodeMetadataEntry, GgufWriter, type GgufTypedValue } from "./writer.js";

/** Metadata edits: a value (plain or typed) sets a key, `null` deletes it. */
export type GgufMetadataEdits = Record<string, GgufValue | GgufTypedValue | null>;

function isTyped(v: GgufValue | GgufTypedValue): v is GgufTypedValue {
  return typeof v === "object" && v !== null && !Array.isArray(v) && "typeInfo" in v;
}

/**
 * A copy of the GGUF file in `bytes` with metadata edited: each key keeps its stored type unless the edit gives a
 * typed value, keys set to `null` are removed, new keys are added. Entries not edited, tensor infos and tensor data
 * are copied byte for byte; an edit of `general.alignment` lays the tensors out again. Built in memory: for small
 * models (fixtures, fuzzing).
 * @param file `bytes` parsed, and `fields` its header fields, when the caller has them already.
 * @throws {GgufError} when `bytes` is not a valid GGUF file or an edit cannot be encoded.
 */
export function rewriteGgufBuffer(
  bytes: Buffer,
  edits: GgufMetadataEdits,
  file: GgufFile = parseGgufBuffer(bytes, bytes.length),
  fields: readonly GgufField[] = locateGgufFields(bytes),
): Buffer {
  const entry = (key: string, edit: GgufValue | GgufTypedValue): Buffer =>
    encodeMetadataEntry(key, isTyped(edit) ? edit : { typeInfo: file.metadataTypes[key]!, value: edit });
  if ("general.alignment" in edits) return relaidOut(bytes, file, edits);
  // Each metadata entry spans from its key's length field to the next one (the last to the first tensor name).
  const keyStarts = fields.filter((f) => f.kind === "key_length").map((f) => f.pos);
  const kvEnd = fields.find((f) => f.kind === "name_length" && f.owner === undefined)?.pos ?? file.headerBytes;
  const keys = Object.keys(file.metadata);
  const parts: Buffer[] = [];
  let count = 0;
  keys.forEach((key, i) => {
    const edit = edits[key];
    if (edit === null) return;
    count++;
    parts.push(edit === undefined ? bytes.subarray(keyStarts[i]!, keyStarts[i + 1] ?? kvEnd) : entry(key, edit));
  });
  for (const [key, edit] of Object.entries(edits)) {
    if (edit === null || Object.prototype.hasOwnProperty.call(file.metadata, key)) continue;
    count++;
    parts.push(encodeMetadataEntry(key, edit));
  }
  const head = Buffer.alloc(24);
  bytes.copy(head, 0, 0, 16); // magic, version, tensor count
  head.writeBigUInt64LE(BigInt(count), 16);
  const header = Buffer.concat([head, ...parts, bytes.subarray(kvEnd, file.headerBytes)]);
  const pad = Math.ceil(header.length / file.alignment) * file.alignment - header.length;
  return Buffer.concat([header, Buffer.alloc(pad), bytes.subarray(file.dataOffset)]);
}

/** The whole file written again by the writer (tensors laid out for the new alignment). */
function relaidOut(bytes: Buffer, file: GgufFile, edits: GgufMetadataEdits): Buffer {
  const w = new GgufWriter();
  for (const key of Object.keys(file.metadata)) {
    const edit = edits[key];
    if (edit === null) continue;
    if (edit === undefined)
      w.setMetadata(key, { typeInfo: file.metadataTypes[key]!, value: materialize(file.metadata[key]!) });
    else w.setMetadata(key, isTyped(edit) ? edit : { typeInfo: file.metadataTypes[key]!, value: edit });
  }
  for (const [key, edit] of Object.entries(edits)) {
    if (edit !== null && !Object.prototype.hasOwnProperty.call(file.metadata, key)) w.setMetadata(key, edit);
  }
  for (const t of file.tensors) w.addTensor({ name: t.name, dims: t.dims, type: t.type, data: new Uint8Array(0) });
  const alignment = w.alignment;
  const parts: Buffer[] = [w.encodeHeader()];
  for (const t of file.tensors) {
    parts.push(bytes.subarray(t.offset, t.offset + t.size));
    const pad = Math.ceil(t.size / alignment) * alignment - t.size;
    if (pad > 0) parts.push(Buffer.alloc(pad));
  }
  return Buffer.concat(parts);
}

/**
 * Writes a copy of the GGUF file `source` to `dest` with metadata edited (see {@link rewriteGgufBuffer}). Used to
 * write regression fixtures (models whose values make llama.cpp abort) from a real model instead of committing
 * binaries.
 */
export async function rewriteGguf(source: string, dest: string, edits: GgufMetadataEdits): Promise<void> {
  const out = rewriteGgufBuffer(await readFile(source), edits);
  const tmp = `${dest}.partial-${process.pid}`;
  await writeFile(tmp, out);
  await rename(tmp, dest);
}
