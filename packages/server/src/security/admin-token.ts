import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { constantTimeEquals } from "./key-secret.js";

/** Admin tokens start with this, so they are never mistaken for API keys. */
export const ADMIN_TOKEN_PREFIX = "llmos-admin-";

/**
 * The local admin token: a random secret written to `<home>/admin.token` (mode 0600) at each daemon
 * start. Whoever can read that file is the owner of this installation; the token grants `admin`, but
 * only to requests from loopback addresses, so the CLI can create the first key without having one.
 */
export class AdminToken {
  private disposed = false;

  private constructor(
    readonly file: string,
    private readonly token: string,
  ) {}

  /** Writes a fresh token (replacing any previous file) and returns it. */
  static create(file: string): AdminToken {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const token = ADMIN_TOKEN_PREFIX + randomBytes(32).toString("base64url");
    // Write a new file and rename it into place: the mode applies from the first byte, and a reader
    // never sees a half-written token. `wx` refuses to follow a planted file or symlink at the temp path.
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    const fd = fs.openSync(tmp, "wx", 0o600);
    try {
      fs.writeSync(fd, `${token}\n`);
      fs.fchmodSync(fd, 0o600); // the umask cannot widen 0600, but be explicit
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    return new AdminToken(file, token);
  }

  /** Reads the token a running daemon wrote (for the CLI); undefined when there is none. */
  static read(file: string): string | undefined {
    try {
      const t = fs.readFileSync(file, "utf8").trim();
      return t.startsWith(ADMIN_TOKEN_PREFIX) ? t : undefined;
    } catch {
      return undefined;
    }
  }

  /** Constant-time check of a presented credential. */
  matches(presented: string): boolean {
    return (
      !this.disposed && presented.startsWith(ADMIN_TOKEN_PREFIX) && constantTimeEquals(presented.trim(), this.token)
    );
  }

  /** Removes the file if it still holds this token (a newer daemon may have replaced it). Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    try {
      if (fs.readFileSync(this.file, "utf8").trim() === this.token) fs.unlinkSync(this.file);
    } catch {
      // already gone
    }
  }
}
