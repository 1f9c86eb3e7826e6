import assert from "node:assert/strict";
import { type ByteWindow, MAX_READ_BUFFER_BYTES, readMore } from "../lib/io/read_buffer.ts";
import type { Reader } from "../lib/io/lines.ts";

/** A source that hands out `chunk` bytes per read, `total` in all. */
function source(total: number, chunk = Infinity): Reader & { sent: number } {
  return {
    sent: 0,
    read(p: Uint8Array) {
      if (this.sent >= total) return Promise.resolve(null);
      const n = Math.min(p.byteLength, chunk, total - this.sent);
      p.fill(0x61, 0, n);
      this.sent += n;
      return Promise.resolve(n);
    },
  };
}

Deno.test("readMore() moves kept bytes to the front of the same buffer when they fill half or less", async () => {
  const w: ByteWindow = { buf: new Uint8Array(16), start: 12, end: 16 };
  const original = w.buf;
  assert.equal(await readMore(source(4), w, 1000), true);
  assert.equal(w.buf, original);
  assert.deepEqual([w.start, w.end], [0, 8]);
});

Deno.test("readMore() doubles the buffer for a long unfinished run, up to the caller's bound", async () => {
  const w: ByteWindow = { buf: new Uint8Array(16), start: 2, end: 16 };
  await readMore(source(1, 1), w, 1000);
  assert.equal(w.buf.byteLength, 32);
  assert.deepEqual([w.start, w.end], [0, 15]);
  const big: ByteWindow = {
    buf: new Uint8Array(MAX_READ_BUFFER_BYTES),
    start: 0,
    end: MAX_READ_BUFFER_BYTES,
  };
  await readMore(source(1, 1), big, 100_000);
  assert.equal(big.buf.byteLength, 100_001, "capped at the bound plus one byte");
});

Deno.test("readMore() grows after full reads to 64 KiB, resets an empty window, and reports the end", async () => {
  const w: ByteWindow = { buf: new Uint8Array(1024), start: 0, end: 0 };
  const busy = source(1 << 20);
  while (w.buf.byteLength < MAX_READ_BUFFER_BYTES) {
    await readMore(busy, w, 1000);
    w.start = w.end; // the caller consumed everything
  }
  assert.equal(w.buf.byteLength, MAX_READ_BUFFER_BYTES);
  await readMore(busy, w, 1000);
  assert.equal(w.buf.byteLength, MAX_READ_BUFFER_BYTES, "never beyond 64 KiB by reads alone");
  const done: ByteWindow = { buf: new Uint8Array(8), start: 3, end: 3 };
  assert.equal(await readMore(source(0), done, 10), false);
  assert.deepEqual([done.start, done.end], [0, 0]);
});
