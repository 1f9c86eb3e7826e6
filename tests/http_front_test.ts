import assert from "node:assert/strict";
import { serveHttpFront } from "../lib/net/http_front.ts";
import { withTimeout } from "./helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Reads until the peer closes (or resets). */
async function readToEnd(conn: Deno.Conn): Promise<string> {
  let text = "";
  const buf = new Uint8Array(4096);
  try {
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      text += decoder.decode(buf.subarray(0, n));
    }
  } catch {
    // Reset: closed all the same.
  }
  return text;
}

async function front() {
  const controller = new AbortController();
  const server = await serveHttpFront(
    (request) => new Response(`${request.method} ${new URL(request.url).pathname}\n`),
    async (target, conn) => {
      await conn.writeAll(`connected to ${target}\n`);
      const buf = new Uint8Array(64);
      for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
        await conn.writeAll(`echo ${decoder.decode(buf.subarray(0, n))}`);
      }
    },
    {
      address: { transport: "tcp", hostname: "127.0.0.1", port: 0 },
      signal: controller.signal,
      onListen: () => {},
    },
  );
  return {
    port: server.addr.port,
    async [Symbol.asyncDispose]() {
      controller.abort();
      await server.finished;
    },
  };
}

Deno.test("serveHttpFront pipes HTTP to Deno.serve, keep-alive and methods starting with C included", async () => {
  await using server = await front();
  const first = await fetch(`http://127.0.0.1:${server.port}/a`);
  assert.equal(await first.text(), "GET /a\n");
  const copy = await fetch(`http://127.0.0.1:${server.port}/b`, { method: "COPY" });
  assert.equal(await copy.text(), "COPY /b\n");
  using conn = await Deno.connect({ port: server.port });
  await conn.write(
    encoder.encode(
      "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ),
  );
  const both = await withTimeout(readToEnd(conn), 5_000, "two pipelined answers");
  assert.match(both, /GET \/1\n[\s\S]*GET \/2\n/);
});

Deno.test("serveHttpFront hands CONNECT over with the bytes after its head, split anywhere", async () => {
  await using server = await front();
  using conn = await Deno.connect({ port: server.port });
  for (const piece of ["CON", "NECT /_goRPC_ HT", "TP/1.0\n\nhel", "lo"]) {
    await conn.write(encoder.encode(piece));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await conn.closeWrite();
  const got = await withTimeout(readToEnd(conn), 5_000, "the CONNECT session");
  assert.match(got, /^connected to \/_goRPC_\necho hel/);
  assert.match(got, /lo$/);
});

Deno.test("serveHttpFront closes a stalled or oversized CONNECT head within a second", async () => {
  await using server = await front();
  for (const stalled of ["CONN", "CONNECT /_goRPC_ HTTP/1.0\n"]) {
    using conn = await Deno.connect({ port: server.port });
    await conn.write(encoder.encode(stalled));
    const started = Date.now();
    await withTimeout(readToEnd(conn), 3_000, `closing after ${JSON.stringify(stalled)}`);
    assert.ok(Date.now() - started < 2_000);
  }
  using conn = await Deno.connect({ port: server.port });
  const huge = `CONNECT /_goRPC_ HTTP/1.0\nX: ${"x".repeat(5000)}\n\n`;
  await conn.write(encoder.encode(huge)).catch(() => 0);
  assert.match(await withTimeout(readToEnd(conn), 3_000, "431"), /^HTTP\/1\.0 431/);
});
