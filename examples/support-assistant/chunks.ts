import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

/** A passage of a document: what is embedded, retrieved and cited. */
export interface Chunk {
  /** `<file>#<n>`, stable across runs. */
  id: string;
  doc: string;
  /** Position in the document, from 0. */
  ord: number;
  text: string;
}

/** Every Markdown or text file of `folder`, split into paragraphs (a heading joins the paragraph after it). */
export function chunkFolder(folder: string, maxChars = 600): Chunk[] {
  const chunks: Chunk[] = [];
  for (const doc of readdirSync(folder).sort()) {
    if (!/\.(md|txt)$/.test(doc)) continue;
    const paragraphs = readFileSync(path.join(folder, doc), "utf8")
      .split(/\n\s*\n/)
      .map((p) => p.trim().replace(/\s+/g, " "))
      .filter(Boolean);
    let heading = "";
    let ord = 0;
    for (const p of paragraphs) {
      if (p.startsWith("#")) {
        heading = `${p.replace(/^#+\s*/, "")}: `;
        continue;
      }
      for (let i = 0; i < p.length; i += maxChars) {
        chunks.push({ id: `${doc}#${ord}`, doc, ord, text: heading + p.slice(i, i + maxChars) });
        ord++;
      }
    }
  }
  return chunks;
}
