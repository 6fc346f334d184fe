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
    // Two 32-bit halves instead of a BigInt: this runs once per string of a vocabulary.
    this.need(8, what);
    const lo = this.buf.readUInt32LE(this.pos);
    const hi = this.buf.readUInt32LE(this.pos + 4);
    this.pos += 8;
    const v = hi * 0x1_0000_0000 + lo;
    if (hi > 0x1f_ffff || v > Math.min(limit, Number.MAX_SAFE_INTEGER)) {
      const exact = (BigInt(hi) << 32n) | BigInt(lo);
      throw new GgufError("limit_exceeded", `${what} is ${exact}, above ${limitName} (${limit})`);
    }
    return v;
  }

  /** Moves past `n` bytes (checked like a read). */
  skip(n: number, what: string): void {
    this.need(n, what);
    this.pos += n;
  }

  /** Moves past a string (its length checked against the limit). */
  skipString(what: string): void {
    const len = this.count(`length of ${what}`, this.limits.maxStringLength, "maxStringLength");
    this.skip(len, what);
  }

  /** Moves past `n` strings: a tight loop for vocabularies, the checked path for anything unusual. */
  skipStrings(n: number, what: string): void {
    const buf = this.buf;
    const end = Math.min(buf.length, this.limits.maxHeaderBytes);
    const max = Math.min(this.limits.maxStringLength, Number.MAX_SAFE_INTEGER);
    let pos = this.pos;
    for (let i = 0; i < n; i++) {
      if (pos + 8 <= end) {
        const lo = buf.readUInt32LE(pos);
        if (buf.readUInt32LE(pos + 4) === 0 && lo <= max && pos + 8 + lo <= end) {
          pos += 8 + lo;
          continue;
        }
      }
      this.pos = pos;
      this.skipString(what); // throws the precise error (or NeedMore), or moves on
      pos = this.pos;
    }
    this.pos = pos;
  }

  /** A view of bytes `[start, end)` already read (no copy). */
  slice(start: number, end: number): Buffer {
    return this.buf.subarray(start, end);
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
