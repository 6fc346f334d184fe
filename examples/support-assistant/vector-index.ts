import Database from "better-sqlite3";
import type { Chunk } from "./chunks.js";

/** A retrieved chunk and its cosine similarity to the query. */
export interface Hit extends Chunk {
  score: number;
}

/**
 * A small vector index in SQLite: one row per chunk with its embedding as a float32 BLOB. Search scans every row
 * (exact cosine similarity), which is all a folder of documents needs.
 */
export class VectorIndex {
  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.exec(`CREATE TABLE IF NOT EXISTS chunks (
      id TEXT PRIMARY KEY, doc TEXT NOT NULL, ord INTEGER NOT NULL, text TEXT NOT NULL, vector BLOB NOT NULL)`);
  }

  /** Replaces the index's content with `chunks` and their `vectors`. */
  replace(chunks: Chunk[], vectors: number[][]): void {
    const insert = this.db.prepare("INSERT INTO chunks (id, doc, ord, text, vector) VALUES (?, ?, ?, ?, ?)");
    this.db.transaction(() => {
      this.db.exec("DELETE FROM chunks");
      chunks.forEach((c, i) =>
        insert.run(c.id, c.doc, c.ord, c.text, Buffer.from(new Float32Array(vectors[i]!).buffer)),
      );
    })();
  }

  /** The `k` chunks closest to `query`, best first. */
  search(query: number[], k: number): Hit[] {
    const rows = this.db.prepare("SELECT id, doc, ord, text, vector FROM chunks").all() as Array<
      Chunk & { vector: Buffer }
    >;
    return rows
      .map(({ vector, ...chunk }) => {
        const v = new Float32Array(vector.buffer, vector.byteOffset, vector.byteLength / 4);
        return { ...chunk, score: cosine(query, v) };
      })
      .sort((a, b) => b.score - a.score)
      .slice(0, k);
  }

  count(): number {
    return (this.db.prepare("SELECT COUNT(*) AS n FROM chunks").get() as { n: number }).n;
  }

  close(): void {
    this.db.close();
  }
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na && nb ? dot / Math.sqrt(na * nb) : 0;
}
