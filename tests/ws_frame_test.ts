import assert from "node:assert/strict";
import { type ByteWindow, readMore } from "../lib/io/read_buffer.ts";
import type { Reader } from "../lib/io/lines.ts";
import {
  closePayload,
  encodeFrame,
  FrameReader,
  type WsMessage,
  WsProtocolError,
} from "../lib/ws/ws_frame.ts";
import { buildFrame, OP, type RawFrame } from "./ws_raw.ts";

/** A reader that hands out the given chunks, one per read (split further if `p` is smaller). */
class ChunkReader implements Reader {
  #chunks: Uint8Array[];
  #next = 0;
  constructor(chunks: Uint8Array[]) {
    this.#chunks = [...chunks];
  }
  read(p: Uint8Array): Promise<number | null> {
    const chunk = this.#chunks[this.#next];
    if (chunk === undefined) return Promise.resolve(null);
    const n = Math.min(p.byteLength, chunk.byteLength);
    p.set(chunk.subarray(0, n));
    if (n < chunk.byteLength) this.#chunks[this.#next] = chunk.subarray(n);
    else this.#next++;
    return Promise.resolve(n);
  }
}

/** Parses `chunks` as a server would, returning every event in order (or the error's code). */
async function parse(chunks: Uint8Array[], maxMessage = 1 << 20): Promise<string[]> {
  const reader = new FrameReader(maxMessage);
  const events: string[] = [];
  const handler = {
    onMessage: (m: WsMessage) =>
      events.push(`${m.binary ? "binary" : "text"}:${m.binary ? m.payload.join(",") : m.text}`),
    onControl: (opcode: number, payload: Uint8Array) =>
      events.push(`control ${opcode}:${payload.join(",")}`),
  };
  const w: ByteWindow = { buf: new Uint8Array(2048), start: 0, end: 0 };
  const source = new ChunkReader(chunks);
  try {
    while (await readMore(source, w, reader.maxPending)) reader.feed(w, handler);
  } catch (error) {
    if (!(error instanceof WsProtocolError)) throw error;
    events.push(`error ${error.code}`);
  }
  return events;
}

/** A deterministic pseudo-random generator, so that a failure can be replayed from its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

/** A random stream of valid client frames: messages whole and fragmented, with pings between. */
function randomStream(next: () => number): Uint8Array {
  const frames: RawFrame[] = [];
  const sizes = [0, 1, 5, 125, 126, 127, 300, 65535, 65536, 70000];
  for (let i = 0; i < 12; i++) {
    const size = sizes[Math.floor(next() * sizes.length)];
    const binary = next() < 0.5;
    const payload = binary
      ? Uint8Array.from({ length: size }, () => Math.floor(next() * 256))
      : new TextEncoder().encode("é€🙂a".repeat(Math.ceil(size / 10)).slice(0, size));
    const pieces = next() < 0.4 ? 1 + Math.floor(next() * 4) : 1;
    for (let p = 0; p < pieces; p++) {
      const from = Math.floor((payload.length * p) / pieces);
      const to = Math.floor((payload.length * (p + 1)) / pieces);
      frames.push({
        opcode: p === 0 ? (binary ? OP.binary : OP.text) : 0,
        payload: payload.subarray(from, to),
        fin: p === pieces - 1,
      });
      if (next() < 0.2) frames.push({ opcode: OP.ping, payload: "p" + p });
    }
  }
  frames.push({ opcode: OP.close, payload: closePayload(1000, "bye") });
  const parts = frames.map(buildFrame);
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}

function chunked(bytes: Uint8Array, next: () => number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    const size = 1 + Math.floor(next() ** 3 * 20_000);
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

Deno.test("FrameReader parses every frame stream the same under random chunking", async () => {
  for (let seed = 1; seed <= 30; seed++) {
    const next = random(seed);
    const stream = randomStream(next);
    const whole = await parse([stream.slice()]);
    assert.ok(whole.length >= 13, `seed ${seed}: ${whole.length} events`);
    assert.ok(!whole.some((e) => e.startsWith("error")), `seed ${seed}: ${whole.at(-1)}`);
    const pieces = await parse(chunked(stream.slice(), next));
    assert.deepEqual(pieces, whole, `seed ${seed}`);
  }
});

Deno.test("FrameReader gives the same messages when fed one byte at a time", async () => {
  const stream = randomStream(random(99));
  const whole = await parse([stream.slice()]);
  const copy = stream.slice();
  const bytes = Array.from({ length: copy.length }, (_, i) => copy.subarray(i, i + 1));
  assert.deepEqual(await parse(bytes), whole);
});

Deno.test("FrameReader refuses an oversize frame from its header, before any payload", async () => {
  const header = buildFrame({ opcode: OP.binary, length: 60 * 1024 * 1024 });
  assert.deepEqual(await parse([header], 1024), ["error 1009"]);
  // Invalid UTF-8 under random chunking still fails with 1007.
  const bad = buildFrame({ opcode: OP.text, payload: Uint8Array.of(0x61, 0xed, 0xa0, 0x80) });
  assert.deepEqual(await parse([bad.subarray(0, 5), bad.subarray(5)]), ["error 1007"]);
});

Deno.test("encodeFrame() writes the three length forms a client can read back", () => {
  for (const n of [0, 125, 126, 65535, 65536]) {
    const frame = encodeFrame(OP.binary, new Uint8Array(n).fill(7));
    const header = n < 126 ? 2 : n < 65536 ? 4 : 10;
    assert.equal(frame.length, header + n);
    assert.equal(frame[0], 0x82);
    assert.equal(frame[1] & 0x80, 0, "server frames are not masked");
    if (n > 0) assert.equal(frame[header + n - 1], 7);
  }
});
