/**
 * The read buffer policy the stream framers share (lines.ts, json_stream.ts):
 * start small, so an idle connection costs little; before a read, move the
 * unfinished bytes to the front, into a buffer twice as big when they fill
 * more than half of it; after a read that filled the buffer, give the next
 * read twice the room, up to 64 KiB.
 *
 * @module
 */

/** Anything that reads bytes into a buffer: a `Deno.Conn`, a `Deno.FsFile`, a session. */
export interface Reader {
  read(p: Uint8Array): Promise<number | null>;
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
 * Returns false at the end of the stream.
 */
export async function readMore(
  source: Reader,
  w: ByteWindow,
  maxPending: number,
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
