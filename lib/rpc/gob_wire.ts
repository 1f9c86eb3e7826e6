/**
 * Gob's wire primitives: unsigned and signed integers, byte-reversed
 * floats, counted strings, written by {@link Out} and read by {@link In}
 * (never past a message's end), and the length-prefixed messages of a
 * stream, read by {@link GobReader} within a size bound.
 *
 * @module
 */
import type { Reader } from "../io/read_buffer.ts";
import { type ByteWindow, INITIAL_BUFFER_BYTES, readMore } from "../io/read_buffer.ts";

/** Input that is no gob, or gob this codec does not represent. */
export class GobError extends SyntaxError {
  constructor(message: string) {
    super(message);
    this.name = "GobError";
  }
}

/** Default bound on one message (a type definition or a value), in bytes. */
export const DEFAULT_MAX_GOB_MESSAGE = 256 * 1024;

/** Throws a {@link GobError}. */
export function fail(message: string): never {
  throw new GobError(message);
}

const textEncoder = new TextEncoder();

/** Appends gob's primitives to a growing buffer. */
export class Out {
  buf = new Uint8Array(64);
  len = 0;

  #room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    bigger.set(this.buf.subarray(0, this.len));
    this.buf = bigger;
  }

  byte(b: number): void {
    this.#room(1);
    this.buf[this.len++] = b;
  }

  /** An unsigned integer: one byte below 128, else the negated byte count and big-endian bytes. */
  uint(n: number | bigint): void {
    if (n < 128) return this.byte(Number(n));
    if (typeof n === "number" && n <= 0xffffffffffff) {
      // Up to 6 bytes: plain arithmetic, no BigInt (the common case: counts, ids, small ints).
      let count = 0;
      for (let v = n; v > 0; v = Math.floor(v / 256)) count++;
      this.byte(256 - count);
      this.#room(count);
      for (let i = count - 1, v = n; i >= 0; i--, v = Math.floor(v / 256)) {
        this.buf[this.len + i] = v % 256;
      }
      this.len += count;
      return;
    }
    let v = BigInt(n);
    const bytes: number[] = [];
    while (v > 0n) {
      bytes.unshift(Number(v & 0xffn));
      v >>= 8n;
    }
    this.byte(256 - bytes.length);
    this.bytes(bytes);
  }

  /** A signed integer, its sign in the low bit. */
  int(n: number | bigint): void {
    if (typeof n === "number" && Math.abs(n) < 2 ** 46) {
      return this.uint(n < 0 ? (-n - 1) * 2 + 1 : n * 2);
    }
    const v = BigInt(n);
    this.uint(v < 0n ? ((~v) << 1n) | 1n : v << 1n);
  }

  /** A float64: its bits byte-reversed, sent as a uint. */
  float(x: number): void {
    const le = new Uint8Array(8);
    new DataView(le.buffer).setFloat64(0, x, true);
    let v = 0n;
    for (let i = 0; i < 8; i++) v = (v << 8n) | BigInt(le[i]);
    this.uint(v);
  }

  bytes(data: ArrayLike<number>): void {
    this.#room(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  string(s: string): void {
    const data = textEncoder.encode(s);
    this.uint(data.length);
    this.bytes(data);
  }

  take(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

/** Prefixes a message with its length. */
export function frame(body: Uint8Array): Uint8Array {
  const out = new Out();
  out.uint(body.length);
  out.bytes(body);
  return out.take();
}

/** Reads gob's primitives from one message, never past its end. */
export class In {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  get left(): number {
    return this.buf.length - this.pos;
  }

  byte(): number {
    if (this.pos >= this.buf.length) fail("Truncated gob message");
    return this.buf[this.pos++];
  }

  uintBig(): bigint {
    const first = this.byte();
    if (first < 128) return BigInt(first);
    const n = 256 - first;
    if (n > 8) fail(`Invalid gob uint: ${n} bytes`);
    if (n > this.left) fail("Truncated gob message");
    let v = 0n;
    for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(this.buf[this.pos++]);
    return v;
  }

  /** A uint as a number, or a bigint past 2^53. */
  uint(): number | bigint {
    const first = this.buf[this.pos];
    if (first !== undefined && first < 128) return this.buf[this.pos++];
    const n = 256 - first;
    if (first !== undefined && n <= 6 && n <= this.left - 1) {
      // Up to 6 bytes fit a double exactly: no BigInt.
      let v = 0;
      for (let i = 1; i <= n; i++) v = v * 256 + this.buf[this.pos + i];
      this.pos += n + 1;
      return v;
    }
    return small(this.uintBig());
  }

  /** A uint meant as a count or index: must fit what is left of the message. */
  count(what: string, limit = this.left): number {
    const n = this.uint();
    if (typeof n === "bigint" || n > limit) fail(`Invalid gob ${what}: ${n} exceeds ${limit}`);
    return n;
  }

  int(): number | bigint {
    const first = this.buf[this.pos];
    if (first !== undefined && (first < 128 || (256 - first <= 6 && 256 - first < this.left))) {
      const u = this.uint() as number;
      return u % 2 === 1 ? -(u - 1) / 2 - 1 : u / 2;
    }
    const u = this.uintBig();
    return small(u & 1n ? ~(u >> 1n) : u >> 1n);
  }

  float(): number {
    const u = this.uintBig();
    const view = new DataView(new ArrayBuffer(8));
    view.setBigUint64(0, u, true); // the bits travel byte-reversed
    return view.getFloat64(0, false);
  }

  bytes(): Uint8Array {
    const n = this.count("length");
    return this.buf.slice(this.pos, this.pos += n);
  }

  string(): string {
    const n = this.count("string length");
    return decoder.decode(this.buf.subarray(this.pos, this.pos += n));
  }
}

const decoder = new TextDecoder();

function small(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER)
    ? Number(v)
    : v;
}

/** Joins byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

// ---------------------------------------------------------------- framing

/** Options for {@link GobReader}. */
export interface GobReaderOptions {
  /** Longest message accepted, in bytes. Default 262144. */
  maxMessageBytes?: number;
}

/** Reads length-prefixed gob messages from a stream, refusing lengths past the bound at once. */
export class GobReader {
  readonly maxMessageBytes: number;
  #source: Reader;
  #w: ByteWindow;

  constructor(source: Reader, options: GobReaderOptions = {}) {
    this.#source = source;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_GOB_MESSAGE;
    this.#w = { buf: new Uint8Array(INITIAL_BUFFER_BYTES), start: 0, end: 0 };
  }

  /** Whether a whole message is already buffered, so that {@link next} will not wait for the peer. */
  get buffered(): boolean {
    const w = this.#w;
    if (w.end === w.start) return false;
    try {
      const r = new In(w.buf.subarray(w.start, w.end));
      const length = r.uintBig();
      return BigInt(w.end - w.start - r.pos) >= length;
    } catch {
      return false; // a length prefix not all here yet
    }
  }

  /** The next message's bytes, or null at a clean end of stream. Throws {@link GobError}. */
  async next(): Promise<Uint8Array | null> {
    const w = this.#w;
    // The length prefix: at most 9 bytes.
    while (true) {
      const have = w.end - w.start;
      if (have > 0) {
        const first = w.buf[w.start];
        const need = first < 128 ? 1 : 1 + (256 - first);
        if (need > 9) fail(`Invalid gob message length prefix 0x${first.toString(16)}`);
        if (have >= need) break;
      }
      if (!await readMore(this.#source, w, this.maxMessageBytes + 9)) {
        if (w.end === w.start) return null;
        fail("Truncated gob message length");
      }
    }
    const r = new In(w.buf.subarray(w.start, w.end));
    const length = r.uintBig();
    if (length > BigInt(this.maxMessageBytes)) {
      fail(`Gob message of ${length} bytes exceeds the limit of ${this.maxMessageBytes}`);
    }
    if (length === 0n) fail("Invalid gob message of 0 bytes");
    const total = r.pos + Number(length);
    while (w.end - w.start < total) {
      if (!await readMore(this.#source, w, this.maxMessageBytes + 9)) {
        fail(`Truncated gob message: ${w.end - w.start - r.pos} of ${length} bytes`);
      }
    }
    const message = w.buf.slice(w.start + r.pos, w.start + total);
    w.start += total;
    return message;
  }
}
