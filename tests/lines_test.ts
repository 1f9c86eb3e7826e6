import assert from "node:assert/strict";
import {
  encodeLines,
  LineReader,
  LineTooLongError,
  LineWriter,
  readLines,
  writeAll,
  type Writer,
} from "../lib/io/lines.ts";

const encoder = new TextEncoder();

/** Every way to cut `bytes` into two or three pieces, plus one byte at a time. */
function splits(bytes: Uint8Array): Uint8Array[][] {
  const out: Uint8Array[][] = [[bytes], [...bytes].map((b) => Uint8Array.of(b))];
  for (let i = 1; i < bytes.length; i++) {
    out.push([bytes.subarray(0, i), bytes.subarray(i)]);
    for (let j = i + 1; j < bytes.length; j++) {
      out.push([bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)]);
    }
  }
  return out;
}

async function collect(chunks: Uint8Array[], maxLineBytes?: number): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of readLines(ReadableStream.from(chunks), { maxLineBytes })) {
    lines.push(line);
  }
  return lines;
}

Deno.test("LineReader splits \\n and \\r\\n lines however the bytes are cut", async () => {
  const bytes = encoder.encode("héllo\r\nworld\n\r\n€x\nlast");
  for (const chunks of splits(bytes)) {
    assert.deepEqual(await collect(chunks), ["héllo", "world", "", "€x", "last"]);
  }
});

Deno.test("LineReader decodes UTF-8 characters split across chunks", async () => {
  const bytes = encoder.encode("日本語🙂\n");
  for (const chunks of splits(bytes)) {
    assert.deepEqual(await collect(chunks), ["日本語🙂"]);
  }
});

Deno.test("LineReader returns a final line without newline, and nothing for empty input", async () => {
  assert.deepEqual(await collect([encoder.encode("no newline")]), ["no newline"]);
  assert.deepEqual(await collect([]), []);
  assert.deepEqual(await collect([encoder.encode("a\n")]), ["a"]);
});

Deno.test("LineReader keeps a lone \\r inside a line and replaces invalid UTF-8", async () => {
  assert.deepEqual(await collect([encoder.encode("a\rb\n")]), ["a\rb"]);
  assert.deepEqual(await collect([Uint8Array.of(0x61, 0xff, 0x00, 0x62, 0x0a)]), ["a\ufffd\0b"]);
});

Deno.test("LineReader accepts a line of exactly the limit, with \\n or \\r\\n", async () => {
  const line = "x".repeat(10);
  for (const ending of ["\n", "\r\n"]) {
    for (const chunks of splits(encoder.encode(line + ending))) {
      assert.deepEqual(await collect(chunks, 10), [line]);
    }
  }
});

Deno.test("LineReader raises LineTooLongError one byte over the limit, however cut", async () => {
  for (
    const text of [
      "x".repeat(11) + "\n",
      "x".repeat(11),
      "x".repeat(10) + "y\r\n",
      "x".repeat(10) + "\r",
    ]
  ) {
    for (const chunks of splits(encoder.encode(text))) {
      await assert.rejects(collect(chunks, 10), LineTooLongError);
    }
  }
});

Deno.test("LineReader stops reading a 1 MiB line without newline at the limit", async () => {
  let read = 0;
  const source = {
    read(p: Uint8Array): Promise<number> {
      p.fill(0x78);
      read += p.byteLength;
      return Promise.resolve(p.byteLength);
    },
  };
  const reader = new LineReader(source);
  await assert.rejects(reader.readLines(), (error: unknown) => {
    assert.ok(error instanceof LineTooLongError);
    assert.match(error.message, /65536 bytes/);
    return true;
  });
  assert.ok(read < 200 * 1024, `read ${read} bytes before giving up`);
});

Deno.test("LineReader.readLines() returns every line one read made available", async () => {
  const reader = new LineReader(
    ReadableStream.from([encoder.encode("a\nb\nc"), encoder.encode("\n")]),
  );
  assert.deepEqual(await reader.readLines(), ["a", "b"]);
  assert.deepEqual(await reader.readLines(), ["c"]);
  assert.equal(await reader.readLines(), null);
});

Deno.test("LineReader.readLine() mixes with readLines()", async () => {
  const reader = new LineReader(ReadableStream.from([encoder.encode("a\nb\nc\nd")]));
  assert.equal(await reader.readLine(), "a");
  assert.deepEqual(await reader.readLines(), ["b", "c"]);
  assert.equal(await reader.readLine(), "d");
  assert.equal(await reader.readLine(), null);
});

/** A writer that accepts at most `step` bytes per call, recording the calls. */
class TrickleWriter implements Writer {
  calls = 0;
  bytes: number[] = [];
  constructor(readonly step: number) {}
  write(p: Uint8Array): Promise<number> {
    this.calls++;
    const n = Math.min(this.step, p.byteLength);
    this.bytes.push(...p.subarray(0, n));
    return Promise.resolve(n);
  }
}

Deno.test("writeAll() loops over partial writes until every byte is written", async () => {
  const w = new TrickleWriter(3);
  await writeAll(w, encoder.encode("0123456789"));
  assert.equal(new TextDecoder().decode(Uint8Array.from(w.bytes)), "0123456789");
  assert.equal(w.calls, 4);
});

Deno.test("LineWriter batches lines written in the same turn into one write", async () => {
  const w = new TrickleWriter(1 << 20);
  const lines = new LineWriter(w);
  await Promise.all(["a", "b", "c"].map((l) => lines.write(l)));
  assert.equal(new TextDecoder().decode(Uint8Array.from(w.bytes)), "a\nb\nc\n");
  assert.equal(w.calls, 1);
  await lines.write("d");
  assert.equal(w.calls, 2);
  assert.equal(lines.pending, 0);
});

Deno.test("encodeLines() ends every line with a newline", () => {
  assert.equal(new TextDecoder().decode(encodeLines(["x", "ü"])), "x\nü\n");
  assert.equal(new TextDecoder().decode(encodeLines(["one"])), "one\n");
});

Deno.test("LineReader skips the rest of an over-long line when read again, however cut", async () => {
  const text = "ok\n" + "y".repeat(25) + "\nafter\n" + "z".repeat(30) + "\r\nlast";
  for (const chunks of splits(new TextEncoder().encode(text)).slice(0, 400)) {
    const reader = new LineReader(ReadableStream.from(chunks), { maxLineBytes: 10 });
    const seen: string[] = [];
    while (true) {
      try {
        const line = await reader.readLine();
        if (line === null) break;
        seen.push(line);
      } catch (error) {
        assert.ok(error instanceof LineTooLongError);
        seen.push("<too long>");
      }
    }
    assert.deepEqual(
      seen,
      ["ok", "<too long>", "after", "<too long>", "last"],
      String(chunks.length),
    );
  }
});

Deno.test("LineReader.readLines() hands out the good lines before an over-long one", async () => {
  const reader = new LineReader(
    ReadableStream.from([new TextEncoder().encode("a\nb\n" + "x".repeat(20) + "\nc\n")]),
    { maxLineBytes: 10 },
  );
  assert.deepEqual(await reader.readLines(), ["a", "b"]);
  await assert.rejects(reader.readLines(), LineTooLongError);
  assert.deepEqual(await reader.readLines(), ["c"]);
  assert.equal(await reader.readLines(), null);
});

Deno.test("LineReader.readLineBytes() passes the same lines as bytes, however cut", async () => {
  const bytes = encoder.encode("héllo\r\nworld\n\r\n€x\nlast");
  for (const chunks of splits(bytes)) {
    const reader = new LineReader(ReadableStream.from(chunks));
    const lines: string[] = [];
    const each = (buf: Uint8Array, start: number, end: number) => {
      lines.push(new TextDecoder().decode(buf.subarray(start, end)));
    };
    let total = 0;
    for (let n = await reader.readLineBytes(each); n; n = await reader.readLineBytes(each)) {
      total += n;
    }
    assert.deepEqual(lines, ["héllo", "world", "", "€x", "last"]);
    assert.equal(total, 5);
  }
});

Deno.test("LineReader.readLineBytes() ends a batch when told, and keeps the bound", async () => {
  const reader = new LineReader(ReadableStream.from([encoder.encode("a\nSTOP\nb\n")]));
  const seen: number[] = [];
  const count = await reader.readLineBytes((_buf, start, end) => {
    seen.push(end - start);
    return end - start !== 4;
  });
  assert.equal(count, 2);
  assert.deepEqual(seen, [1, 4]);
  const long = new LineReader(ReadableStream.from([new Uint8Array(9).fill(0x61)]), {
    maxLineBytes: 8,
  });
  await assert.rejects(long.readLineBytes(() => {}), LineTooLongError);
  const skipping = new LineReader(
    ReadableStream.from([encoder.encode("a\n" + "x".repeat(20) + "\nb\n")]),
    { maxLineBytes: 8 },
  );
  const lines: string[] = [];
  const collect = (buf: Uint8Array, start: number, end: number) => {
    lines.push(new TextDecoder().decode(buf.subarray(start, end)));
  };
  assert.equal(await skipping.readLineBytes(collect), 1);
  await assert.rejects(skipping.readLineBytes(collect), LineTooLongError);
  assert.equal(await skipping.readLineBytes(collect), 1);
  assert.deepEqual(lines, ["a", "b"], "the over-long line is skipped, the next one read");
});

Deno.test("LineReader with a tiny first buffer still reads long lines, growing as needed", async () => {
  const long = "x".repeat(5000);
  const bytes = encoder.encode(`short\n${long}\r\nend`);
  for (const chunks of [[bytes], [...bytes].map((b) => Uint8Array.of(b))]) {
    const reader = new LineReader(ReadableStream.from(chunks), { initialBufferBytes: 16 });
    const lines: string[] = [];
    for await (const line of reader) lines.push(line);
    assert.deepEqual(lines, ["short", long, "end"]);
  }
});
