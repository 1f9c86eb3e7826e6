import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { copyHashed, readFull, sha256 } from "../lib/file/hashed_copy.ts";
import type { Reader, Writer } from "../lib/io/lines.ts";

/** A reader that hands out `data` in pieces of at most `piece` bytes. */
function pieces(data: Uint8Array, piece: number): Reader {
  let offset = 0;
  return {
    read(p: Uint8Array) {
      if (offset >= data.byteLength) return Promise.resolve(null);
      const n = Math.min(piece, p.byteLength, data.byteLength - offset);
      p.set(data.subarray(offset, offset + n));
      offset += n;
      return Promise.resolve(n);
    },
  };
}

/** A writer that collects bytes, taking at most `piece` per write, after a tick. */
function collector(piece: number): Writer & { bytes: () => Uint8Array } {
  const chunks: Uint8Array[] = [];
  return {
    async write(p: Uint8Array) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      const n = Math.min(piece, p.byteLength);
      chunks.push(p.slice(0, n));
      return n;
    },
    bytes() {
      const out = new Uint8Array(chunks.reduce((sum, c) => sum + c.byteLength, 0));
      let at = 0;
      for (const c of chunks) {
        out.set(c, at);
        at += c.byteLength;
      }
      return out;
    },
  };
}

const data = new Uint8Array(300_001).map((_, i) => (i * 7919 + (i >> 8)) % 256);
const hexOf = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

Deno.test("copyHashed() copies and hashes exactly, whatever the read, write and chunk sizes", async () => {
  for (
    const [piece, chunk, writePiece] of [[1000, 4096, 777], [65536, 65536, 1 << 20], [
      7,
      1 << 20,
      5000,
    ]]
  ) {
    const sink = collector(writePiece);
    const hash = sha256();
    const seen: number[] = [];
    const n = await copyHashed(pieces(data, piece), hash, data.byteLength, {
      sink,
      chunkBytes: chunk,
      onChunk: (b) => seen.push(b),
    });
    assert.equal(n, data.byteLength);
    assert.deepEqual(sink.bytes(), data);
    assert.equal(hash.digest("hex"), hexOf(data));
    assert.equal(seen.reduce((a, b) => a + b, 0), data.byteLength);
  }
});

Deno.test("copyHashed() stops at the byte count and leaves the rest unread", async () => {
  const source = pieces(data, 4096);
  const hash = sha256();
  assert.equal(await copyHashed(source, hash, 10_000, { chunkBytes: 3000 }), 10_000);
  assert.equal(hash.digest("hex"), hexOf(data.subarray(0, 10_000)));
  const next = new Uint8Array(1);
  await source.read(next);
  assert.equal(next[0], data[10_000]);
});

Deno.test("copyHashed() returns fewer bytes when the source ends early, and 0 for 0", async () => {
  const sink = collector(1 << 20);
  assert.equal(await copyHashed(pieces(data, 5000), sha256(), 1_000_000, { sink }), data.length);
  assert.deepEqual(sink.bytes(), data);
  const empty = sha256();
  assert.equal(await copyHashed(pieces(data, 1), empty, 0), 0);
  assert.equal(empty.digest("hex"), hexOf(new Uint8Array(0)));
});

Deno.test("copyHashed() rejects when the sink fails", async () => {
  const failing: Writer = { write: () => Promise.reject(new Deno.errors.BrokenPipe("gone")) };
  await assert.rejects(
    copyHashed(pieces(data, 65536), sha256(), data.byteLength, { sink: failing, chunkBytes: 4096 }),
    Deno.errors.BrokenPipe,
  );
});

Deno.test("readFull() fills the buffer across short reads", async () => {
  const buf = new Uint8Array(100);
  assert.equal(await readFull(pieces(data, 3), buf, 100), 100);
  assert.deepEqual(buf, data.subarray(0, 100));
  assert.equal(await readFull(pieces(data.subarray(0, 10), 3), buf, 100), 10);
});
