/**
 * The read buffer policy the stream framers share (lines.ts, json_stream.ts):
 * start small, so an idle connection costs little; before a read, move the
 * unfinished bytes to the front, into a buffer twice as big when they fill
 * more than half of it; after a read that filled the buffer, give the next
 * read twice the room, up to 64 KiB. Also the two helpers for sniffing a
 * protocol from a connection's first bytes: {@link readUntil} and
 * {@link prependReader}.
 *
 * @module
 */

/** Anything that reads bytes into a buffer: a `Deno.Conn`, a `Deno.FsFile`, a session. */
export interface Reader {
  read(p: Uint8Array): Promise<number | null>;
  /**
   * Told just before a read whether the caller holds the start of a
   * message it cannot finish without more bytes (a session times that
   * against its head deadline). A read without this call means no.
   */
  partial?(started: boolean): void;
}

/** First read buffer: small, so that an idle connection costs little memory. */
export const INITIAL_BUFFER_BYTES = 2 * 1024;
/** Reads grow their buffer up to this size while the peer keeps filling it. */
export const MAX_READ_BUFFER_BYTES = 64 * 1024;

/** Bytes read so far: `buf[start..end)` is kept, everything before `start` is done with. */
export interface ByteWindow {
  buf: Uint8Array;
  start: number;
  end: number;
}

/**
 * Reads once from `source` into the room after `w.end`, first making room
 * as the policy says; the kept bytes may move, so `w.start` may go down
 * (shift other indices by the same amount). `maxPending` is the most kept
 * bytes the caller allows before failing: the buffer grows to hold it.
 * The source is told (see {@link Reader.partial}) that a message is
 * started when bytes are kept, or when `skipping` says the caller is
 * dropping the rest of one it refused. Returns false at the end of the
 * stream.
 */
export async function readMore(
  source: Reader,
  w: ByteWindow,
  maxPending: number,
  skipping = false,
): Promise<boolean> {
  if (w.start === w.end) {
    w.start = w.end = 0;
  } else if (w.end === w.buf.byteLength) {
    const pending = w.end - w.start;
    if (pending * 2 > w.buf.byteLength) {
      const cap = Math.max(MAX_READ_BUFFER_BYTES, maxPending + 1);
      const bigger = new Uint8Array(Math.min(w.buf.byteLength * 2, cap));
      bigger.set(w.buf.subarray(w.start, w.end));
      w.buf = bigger;
    } else {
      w.buf.copyWithin(0, w.start, w.end);
    }
    w.start = 0;
    w.end = pending;
  }
  source.partial?.(skipping || w.end > w.start);
  const n = await source.read(w.buf.subarray(w.end));
  if (n === null) return false;
  w.end += n;
  // A full read hints at a busy peer: give the next read more room.
  if (w.end === w.buf.byteLength && w.buf.byteLength < MAX_READ_BUFFER_BYTES) {
    const bigger = new Uint8Array(Math.min(w.buf.byteLength * 2, MAX_READ_BUFFER_BYTES));
    bigger.set(w.buf.subarray(w.start, w.end));
    w.end -= w.start;
    w.start = 0;
    w.buf = bigger;
  }
  return true;
}

/** A reader that first returns `prefix` (bytes already read, e.g. to sniff a protocol), then reads `source`. */
export function prependReader(prefix: Uint8Array, source: Reader): Reader {
  let rest = prefix;
  return {
    partial(started: boolean): void {
      source.partial?.(started);
    },
    read(p: Uint8Array): Promise<number | null> {
      if (rest.length === 0) return source.read(p);
      const n = Math.min(p.length, rest.length);
      p.set(rest.subarray(0, n));
      rest = rest.subarray(n);
      return Promise.resolve(n);
    },
  };
}

/**
 * Reads from `source` into a new buffer until `enough(bytes)` says so, the
 * stream ends or `max` bytes have come; returns what was read (null if
 * the stream ended before any byte).
 */
export async function readUntil(
  source: Reader,
  enough: (bytes: Uint8Array) => boolean,
  max: number,
): Promise<Uint8Array | null> {
  const buf = new Uint8Array(max);
  let len = 0;
  while (len < max && (len === 0 || !enough(buf.subarray(0, len)))) {
    source.partial?.(len > 0);
    const n = await source.read(buf.subarray(len));
    if (n === null) break;
    len += n;
  }
  return len === 0 ? null : buf.subarray(0, len);
}
