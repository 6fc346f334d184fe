import { GgufError } from "./errors.js";
import type { GgufLimits } from "./types.js";

/** Thrown inside the parser when the header continues past the bytes read so far. */
export class NeedMore {
  constructor(readonly end: number) {}
}

/** A name for error messages: quoted, control characters escaped, long names shortened. */
export function q(name: string): string {
  return JSON.stringify(name.length > 120 ? `${name.slice(0, 120)}...` : name);
}

/** A bounds-checked little-endian cursor over the bytes read so far. */
export class Cursor {
  pos = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly fileSize: number,
    private readonly limits: GgufLimits,
  ) {}

  /** Ensures `n` more bytes are readable, or explains why not. */
  need(n: number, what: string): void {
    const end = this.pos + n;
    if (end <= this.buf.length && end <= this.limits.maxHeaderBytes) return;
    if (end > this.fileSize) {
      throw new GgufError(
        "truncated",
        `file ends at byte ${this.fileSize} but ${what} at offset ${this.pos} needs ${n} bytes`,
      );
    }
    if (end > this.limits.maxHeaderBytes) {
      throw new GgufError(
        "limit_exceeded",
        `header reaches byte ${end} (${what}), above maxHeaderBytes (${this.limits.maxHeaderBytes})`,
      );
    }
    throw new NeedMore(end);
  }

  /** Rejects `n` bytes that cannot possibly fit in the rest of the file (cheap, before any loop). */
  mustFit(n: number, what: string): void {
    if (this.pos + n > this.fileSize) {
      throw new GgufError(
        "truncated",
        `file ends at byte ${this.fileSize} but ${what} need at least ${n} bytes from offset ${this.pos}`,
      );
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf.readUInt8(this.pos++);
  }
  i8(what: string): number {
    this.need(1, what);
    return this.buf.readInt8(this.pos++);
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  i16(what: string): number {
    this.need(2, what);
    const v = this.buf.readInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  i32(what: string): number {
    this.need(4, what);
    const v = this.buf.readInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  f32(what: string): number {
    this.need(4, what);
    const v = this.buf.readFloatLE(this.pos);
    this.pos += 4;
    return v;
  }
  f64(what: string): number {
    this.need(8, what);
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }
  u64(what: string): bigint {
    this.need(8, what);
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }
  i64(what: string): bigint {
    this.need(8, what);
    const v = this.buf.readBigInt64LE(this.pos);
    this.pos += 8;
    return v;
  }

  /** A u64 count or length, checked against a limit (which is at most MAX_SAFE_INTEGER in effect). */
  count(what: string, limit: number, limitName: keyof GgufLimits): number {
    const v = this.u64(what);
    if (v > BigInt(Math.min(limit, Number.MAX_SAFE_INTEGER))) {
      throw new GgufError("limit_exceeded", `${what} is ${v}, above ${limitName} (${limit})`);
    }
    return Number(v);
  }

  string(what: string): string {
    return this.stringBytes(what).text;
  }

  /** A string and its stored length in bytes (which differs from the decoded length for invalid UTF-8). */
  stringBytes(what: string): { text: string; bytes: number } {
    const len = this.count(`length of ${what}`, this.limits.maxStringLength, "maxStringLength");
    this.need(len, what);
    const text = this.buf.toString("utf8", this.pos, this.pos + len);
    this.pos += len;
    return { text, bytes: len };
  }
}
