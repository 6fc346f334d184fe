import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { LlmosError } from "./errors.js";

/** Who holds a home: written next to the lock for the refusal message of a second daemon. */
export interface HomeLockHolder {
  pid: number;
  startedAt: string;
  url?: string;
}

/**
 * One daemon per LLMOS_HOME. The lock is SQLite's exclusive lock on `<home>/daemon.lock`: a POSIX advisory lock
 * held by the kernel for the open file, so it is released the moment the holder exits, crashes or is killed
 * (no stale lock to clean up), and a second opener fails at once instead of waiting. SQLite also keeps two
 * connections of one process apart, so a second daemon started in the same process is refused too.
 * Take it before anything under the home is written.
 */
export class HomeLock {
  #db: Database.Database | undefined;

  private constructor(
    readonly file: string,
    db: Database.Database,
  ) {
    this.#db = db;
  }

  /**
   * Takes the lock on `file` (creating it) or throws `conflict` naming the holder.
   * @param file `homePaths(home).lock`
   */
  static acquire(file: string): HomeLock {
    const db = new Database(file, { timeout: 0 });
    try {
      db.pragma("locking_mode = EXCLUSIVE");
      // The first write takes SQLite's EXCLUSIVE lock; in this locking mode it is kept until the connection closes.
      db.exec("BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS holder (pid INTEGER); DELETE FROM holder; COMMIT;");
      db.prepare("INSERT INTO holder (pid) VALUES (?)").run(process.pid);
    } catch (error) {
      db.close();
      if ((error as { code?: string }).code?.startsWith("SQLITE_BUSY") || /locked/i.test(String(error))) {
        const holder = readHolder(file);
        const who = holder
          ? `pid ${holder.pid}${holder.url ? `, ${holder.url}` : ""}, started ${holder.startedAt}`
          : "another process";
        throw new LlmosError(
          "conflict",
          `another llmos daemon (${who}) is using ${path.dirname(file)}; stop it first or set LLMOS_HOME to another folder`,
          { lock: file, ...(holder ? { holderPid: holder.pid } : {}) },
        );
      }
      throw error;
    }
    return new HomeLock(file, db);
  }

  /** Records who holds the lock (shown to a second daemon). */
  describe(holder: Omit<HomeLockHolder, "pid" | "startedAt">): void {
    if (!this.#db) return;
    const info: HomeLockHolder = { pid: process.pid, startedAt: new Date().toISOString(), ...holder };
    try {
      fs.writeFileSync(holderFile(this.file), `${JSON.stringify(info)}\n`, { mode: 0o600 });
    } catch {
      // only a nicer message for others
    }
  }

  /** Releases the lock (idempotent). */
  release(): void {
    if (!this.#db) return;
    try {
      fs.rmSync(holderFile(this.file), { force: true });
    } finally {
      this.#db.close();
      this.#db = undefined;
    }
  }
}

function holderFile(lockFile: string): string {
  return `${lockFile}.json`;
}

function readHolder(lockFile: string): HomeLockHolder | undefined {
  try {
    const h = JSON.parse(fs.readFileSync(holderFile(lockFile), "utf8")) as HomeLockHolder;
    return typeof h.pid === "number" ? h : undefined;
  } catch {
    return undefined;
  }
}
