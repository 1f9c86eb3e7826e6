import assert from "node:assert/strict";
import { CLOSE_ABNORMAL } from "../lib/ws/ws_frame.ts";
import { originAllowed, parseAllowedOrigins } from "../lib/ws/ws_http.ts";
import {
  type WsHandlers,
  WsServer,
  type WsServerOptions,
  type WsSocket,
} from "../lib/ws/ws_server.ts";
import { delay, missingPeer, withTimeout } from "./helpers.ts";
import { OP, RawWsClient, text } from "./ws_raw.ts";

function request(headers: Record<string, string>): Request {
  return new Request("http://127.0.0.1:8080/ws", { headers });
}

/** An in-process echo server on the engine: /ws upgrades, anything else is a page. */
function serveEngine(options: WsServerOptions, handlers: Partial<WsHandlers> = {}) {
  const closes: Array<{ code: number; reason: string }> = [];
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const all: WsHandlers = {
    onMessage: (client, message) =>
      client.send(message.payload, message.binary ? OP.binary : OP.text),
    ...handlers,
    onClose: (client, code, reason) => {
      closes.push({ code, reason });
      handlers.onClose?.(client, code, reason);
    },
  };
  const server = new WsServer(
    listener,
    (req) => new URL(req.url).pathname === "/ws" ? all : new Response("page\n"),
    options,
  );
  return {
    server,
    closes,
    port: server.addr.port,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}

Deno.test("parseAllowedOrigins() keeps origins only, accepts *, and quotes a bad value", () => {
  assert.deepEqual(parseAllowedOrigins(["https://example.com/path", "http://a:8080"]), [
    "https://example.com",
    "http://a:8080",
  ]);
  assert.equal(parseAllowedOrigins(["https://x", "*"]), "*");
  assert.throws(() => parseAllowedOrigins(["example.com"]), /Invalid --allow-origin "example.com"/);
});

Deno.test("originAllowed() allows no Origin and the request's own host, refuses others", () => {
  const host = { host: "127.0.0.1:8080" };
  assert.equal(originAllowed(request(host)), true);
  assert.equal(originAllowed(request({ ...host, origin: "http://127.0.0.1:8080" })), true);
  assert.equal(originAllowed(request({ ...host, origin: "http://evil.example" })), false);
  assert.equal(originAllowed(request({ ...host, origin: "http://127.0.0.1:9999" })), false);
  assert.equal(originAllowed(request({ ...host, origin: "null" })), false);
  assert.equal(originAllowed(request({ ...host, origin: "not a url" })), false);
  const allowed = parseAllowedOrigins(["http://evil.example"]);
  assert.equal(originAllowed(request({ ...host, origin: "http://evil.example" }), allowed), true);
  assert.equal(originAllowed(request({ ...host, origin: "null" }), "*"), true);
});

Deno.test("WsServer answers 403 to a foreign Origin, 426 to a plain GET, pages to others", async () => {
  await using server = serveEngine({});
  const foreign = await RawWsClient.open(server.port, "/ws", { Origin: "http://evil.example" });
  foreign.client.close();
  assert.equal(foreign.reply.status, 403);
  const plain = await fetch(`http://127.0.0.1:${server.port}/ws`);
  assert.equal(plain.status, 426);
  assert.equal(plain.headers.get("sec-websocket-version"), "13");
  await plain.body?.cancel();
  const page = await fetch(`http://127.0.0.1:${server.port}/`);
  assert.equal(await page.text(), "page\n");
  assert.equal(server.server.size, 0);
});

Deno.test("WsServer echoes text and binary and closes an oversize message with 1009", async () => {
  await using server = serveEngine({ maxMessageBytes: 1000 });
  const { client, reply } = await RawWsClient.open(server.port);
  await using _client = client;
  assert.equal(reply.status, 101, reply.head);
  await client.sendFrame(OP.text, "héllo");
  assert.equal(text(await client.readFrame()), "héllo");
  await client.sendFrame(OP.binary, Uint8Array.of(0, 255, 1));
  const binary = await client.readFrame();
  assert.equal(binary?.opcode, OP.binary);
  assert.deepEqual(binary?.payload, Uint8Array.of(0, 255, 1));
  // 400 three-byte characters: 400 UTF-16 units, 1200 bytes.
  await client.sendFrame(OP.text, "€".repeat(400));
  const { code, messages } = await client.readClose();
  assert.equal(code, 1009);
  assert.equal(messages.length, 0);
  await client.sendClose(1009);
  await withTimeout(
    (async () => {
      while (server.closes.length === 0) await delay(10);
    })(),
    3_000,
    "onClose",
  );
  assert.equal(server.closes.length, 1);
});

Deno.test("WsSocket reports a close once, however many times it is asked to close", async () => {
  let clientSide: WsSocket | null = null;
  await using server = serveEngine({}, {
    onOpen: (client) => clientSide = client,
  });
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`);
  const closed = new Promise<CloseEvent>((resolve) => ws.onclose = resolve);
  await new Promise((resolve) => ws.onopen = resolve);
  while (!clientSide) await delay(5);
  const socket = clientSide as WsSocket;
  socket.close(1000, "bye");
  socket.close(1001, "again");
  ws.close();
  const event = await closed;
  assert.equal(event.code, 1000);
  while (server.closes.length === 0) await delay(10);
  await delay(50);
  assert.equal(server.closes.length, 1);
  assert.equal(socket.send("late"), false);
});

Deno.test("WsServer drops a peer that never reads once its unread bytes pass the bound", async () => {
  const chunk = new Uint8Array(256 * 1024);
  let sent = 0;
  let refused = false;
  await using server = serveEngine({ maxBufferedBytes: 1 << 20, closeTimeoutMs: 300 }, {
    onOpen(client) {
      // Far more than loopback buffers hold: the runtime must queue the rest.
      for (let i = 0; i < 200 && !refused; i++) {
        if (client.send(chunk)) sent++;
        else refused = true;
      }
    },
  });
  const { client, reply } = await RawWsClient.open(server.port);
  assert.equal(reply.status, 101);
  await withTimeout(
    (async () => {
      while (server.closes.length === 0) await delay(20);
    })(),
    5_000,
    "the guard to give the slow reader up",
  );
  assert.equal(refused, true);
  assert.ok(sent < 200, `sent ${sent} chunks`);
  assert.equal(server.closes[0].code, CLOSE_ABNORMAL);
  assert.equal(server.server.size, 0);
  // The server closed the TCP connection: the client reads to its end.
  await withTimeout(
    (async () => {
      while ((await client.conn.read(new Uint8Array(1 << 16))) !== null) { /* drain */ }
    })(),
    5_000,
    "the server to close the connection",
  );
  client.close();
});

Deno.test("WsServer.shutdown() closes every socket with 1001", async () => {
  await using server = serveEngine({});
  const sockets = [0, 1, 2].map(() => new WebSocket(`ws://127.0.0.1:${server.port}/ws`));
  await Promise.all(sockets.map((ws) => new Promise((resolve) => ws.onopen = resolve)));
  const codes = Promise.all(
    sockets.map((ws) => new Promise<number>((resolve) => ws.onclose = (e) => resolve(e.code))),
  );
  await server.server.shutdown();
  assert.deepEqual(await codes, [1001, 1001, 1001]);
  assert.equal(server.server.size, 0);
});

/** Sends raw bytes and reads the reply until the server closes. */
async function rawRequest(port: number, bytes: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(bytes)).catch(() => 0);
    let reply = "";
    const buf = new Uint8Array(4096);
    while (true) {
      const n = await withTimeout(conn.read(buf), 5_000, "the reply").catch(() => null);
      if (n === null) return reply;
      reply += new TextDecoder().decode(buf.subarray(0, n));
    }
  } finally {
    conn.close();
  }
}

Deno.test("WsServer's HTTP head: 431, 413, 405, 400, HEAD without a body, a slow head closed", async () => {
  await using server = serveEngine({ headTimeoutMs: 300 });
  const port = server.port;
  const big = await rawRequest(port, `GET / HTTP/1.1\r\nHost: x\r\nX: ${"a".repeat(9000)}\r\n\r\n`);
  assert.match(big, /^HTTP\/1\.1 431 /);
  const body = await rawRequest(port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
  assert.match(body, /^HTTP\/1\.1 413 /);
  const put = await rawRequest(port, "PUT / HTTP/1.1\r\nHost: x\r\n\r\n");
  assert.match(put, /^HTTP\/1\.1 405 [^]*allow: GET, HEAD/);
  const noHost = await rawRequest(port, "GET / HTTP/1.1\r\n\r\n");
  assert.match(noHost, /^HTTP\/1\.1 400 /);
  const badKey = await RawWsClient.open(port, "/ws", { "Sec-WebSocket-Key": "short" });
  badKey.client.close();
  assert.equal(badKey.reply.status, 400);
  const oldVersion = await RawWsClient.open(port, "/ws", { "Sec-WebSocket-Version": "8" });
  oldVersion.client.close();
  assert.equal(oldVersion.reply.status, 426);
  assert.match(oldVersion.reply.head, /sec-websocket-version: 13/i);
  const head = await rawRequest(port, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
  assert.match(head, /^HTTP\/1\.1 200 [^]*content-length: 5\r\n/);
  assert.ok(head.endsWith("\r\n\r\n"), "HEAD gets no body");
  // Half a head, then nothing: closed after the head timeout, with no answer.
  const started = Date.now();
  const slow = await rawRequest(port, "GET / HTTP/1.1\r\nHost: x\r\n");
  assert.equal(slow, "");
  assert.ok(Date.now() - started < 3_000, `closed after ${Date.now() - started} ms`);
});

Deno.test({
  name: "WsServer answers curl: a page, HEAD, and 426 for a plain GET of a WebSocket path",
  ignore: missingPeer("curl"),
  async fn() {
    await using server = serveEngine({});
    const curl = async (...args: string[]) => {
      const { stdout } = await new Deno.Command("curl", {
        args: ["-s", "-i", ...args],
        stdout: "piped",
        stderr: "null",
      }).output();
      return new TextDecoder().decode(stdout);
    };
    assert.match(
      await curl(`http://127.0.0.1:${server.port}/`),
      /^HTTP\/1\.1 200 [^]*\r\n\r\npage\n$/,
    );
    assert.match(await curl("-I", `http://127.0.0.1:${server.port}/`), /content-length: 5/);
    assert.match(await curl(`http://127.0.0.1:${server.port}/ws`), /^HTTP\/1\.1 426 /);
  },
});
