import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { looksLikePath } from "@llmos/protocol";
import type { Client } from "llmos";
import type { CliContext } from "./context.js";
import { formatBytes } from "./format.js";

/** The sha256 digest (`sha256:<hex>`) of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return `sha256:${hash.digest("hex")}`;
}

/**
 * Sends a local file to the daemon as a blob (unless it has it already) and returns its digest. This is how the
 * CLI imports files: the daemon reads no path a client names outside LLMOS_IMPORT_DIRS, and a daemon on another
 * machine could not read the file anyway.
 */
export async function uploadFile(ctx: CliContext, client: Client, file: string): Promise<string> {
  const stat = await fs.promises.stat(file);
  if (!stat.isFile()) throw new Error(`${file} is not a file`);
  ctx.info(`hashing ${path.basename(file)} (${formatBytes(stat.size)})`);
  const digest = await sha256File(file);
  if (await client.hasBlob(digest)) return digest;
  ctx.info(`uploading ${path.basename(file)} to ${client.host}`);
  await client.uploadBlob(digest, await fs.openAsBlob(file));
  return digest;
}

/**
 * A Modelfile whose FROM/ADAPTER lines that name local files (relative to `baseDir`) are uploaded and replaced by
 * `@sha256:<hex>`, as Ollama's CLI does; other lines are kept as written.
 */
export async function uploadModelfileFiles(
  ctx: CliContext,
  client: Client,
  modelfile: string,
  baseDir: string,
): Promise<string> {
  const lines = modelfile.split("\n");
  let inTripleQuotes = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const wasQuoted = inTripleQuotes;
    inTripleQuotes = (line.split('"""').length - 1) % 2 === 1 ? !inTripleQuotes : inTripleQuotes;
    if (wasQuoted) continue;
    const m = /^(\s*)(from|adapter)(\s+)(.+?)\s*$/i.exec(line);
    if (!m) continue;
    const ref = m[4]!.replace(/^"(.*)"$/, "$1");
    if (!looksLikePath(ref)) continue;
    const file = path.resolve(baseDir, ref.startsWith("~/") ? path.join(os.homedir(), ref.slice(2)) : ref);
    if (!fs.existsSync(file)) continue; // the daemon explains what it cannot find
    lines[i] = `${m[1]}${m[2]}${m[3]}@${await uploadFile(ctx, client, file)}`;
  }
  return lines.join("\n");
}
