import assert from "node:assert/strict";
import { parseCommand, UsageError } from "../lib/cli/cli.ts";
import {
  readyLine,
  schemeOf,
  SERVER_OPTIONS,
  serverOptions,
  serverSettings,
} from "../lib/net/lifecycle.ts";
import { ConnectionLimit } from "../lib/net/workers.ts";
import { startScript, TcpPeer } from "./helpers.ts";

Deno.test("serverOptions() picks shared options, always with --host and --port, adjusting words", () => {
  const options = serverOptions(["idle-timeout", "quiet"], {
    "idle-timeout": { default: "60s", description: "ping first" },
  });
  assert.deepEqual(Object.keys(options), ["port", "host", "idle-timeout", "quiet"]);
  assert.equal(options["idle-timeout"].default, "60s");
  assert.equal(options["idle-timeout"].description, "ping first");
  assert.equal(options["idle-timeout"].arg, SERVER_OPTIONS["idle-timeout"].arg);
  assert.equal(SERVER_OPTIONS["idle-timeout"].default, "0", "the shared table is left alone");
});

Deno.test("serverSettings() reads ADDR, --port on --host, and the shared options", () => {
  const spec = { name: "t", summary: "", args: "[ADDR]", options: SERVER_OPTIONS };
  const parse = (...args: string[]) => {
    const { values, positionals } = parseCommand(spec, args);
    return serverSettings(values, positionals, { defaultPort: 7 });
  };
  assert.deepEqual(parse(), {
    address: { transport: "tcp", hostname: "0.0.0.0", port: 7 },
    maxConns: 10_000,
    idleTimeoutMs: 0,
    headTimeoutMs: 10_000,
    bodyTimeoutMs: 30_000,
    quiet: false,
    workers: 1,
    tls: undefined,
  });
  assert.deepEqual(
    parse(
      "--host=::1",
      "--port=9",
      "--max-conns=3",
      "--idle-timeout=2s",
      "--head-timeout=1s",
      "--body-timeout=500ms",
      "-q",
      "--workers=2",
    ),
    {
      address: { transport: "tcp", hostname: "::1", port: 9 },
      maxConns: 3,
      idleTimeoutMs: 2000,
      headTimeoutMs: 1000,
      bodyTimeoutMs: 500,
      quiet: true,
      workers: 2,
      tls: undefined,
    },
  );
  assert.equal((parse("127.0.0.1:80").address as { port: number }).port, 80);
  assert.throws(() => parse("x:99999"), /Cannot parse address "x:99999": port must be 0-65535/);
  assert.throws(() => parse("--max-conns=0"), UsageError);
  assert.throws(() => parse("--workers=0"), UsageError);
  assert.throws(() => parse("--body-timeout=0"), /Invalid --body-timeout "0": must be more than 0/);
  // Options a server does not take have their defaults.
  assert.equal(serverSettings({ host: "0.0.0.0" }, [], { defaultPort: 1 }).maxConns, 10_000);
});

Deno.test("readyLine() names the scheme from the transport, and TLS switches it", () => {
  const addr: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 80 };
  assert.equal(readyLine(addr), "Listening on tcp://127.0.0.1:80");
  assert.equal(readyLine(addr, { protocol: "http" }), "Listening on http://127.0.0.1:80");
  assert.equal(readyLine(addr, { tls: true }), "Listening on tls://127.0.0.1:80");
  assert.equal(
    readyLine(addr, { protocol: "http", tls: true }),
    "Listening on https://127.0.0.1:80",
  );
  assert.equal(schemeOf("udp"), "udp");
  assert.equal(
    readyLine({ ...addr, hostname: "::1" }, { protocol: "http", path: "/rpc", workers: 2 }),
    "Listening on http://[::1]:80/rpc (2 workers)",
  );
  assert.equal(
    readyLine(addr, { note: "chat over TCP" }),
    "Listening on tcp://127.0.0.1:80 (chat over TCP)",
  );
  assert.equal(readyLine({ transport: "unix", path: "/tmp/s" }), "Listening on unix:/tmp/s");
});

Deno.test("ConnectionLimit hands out at most max places, shared through its buffer", () => {
  const a = new ConnectionLimit(2);
  const b = new ConnectionLimit(2, a.buffer);
  assert.equal(a.tryAcquire(), true);
  assert.equal(b.tryAcquire(), true);
  assert.equal(a.tryAcquire(), false);
  assert.equal(b.open, 2);
  b.release();
  assert.equal(a.tryAcquire(), true);
});

/** Opens `count` connections and returns how many the echo server took (the rest got the busy line). */
async function acceptedOf(port: number, count: number, peers: TcpPeer[]): Promise<number> {
  let accepted = 0;
  for (let i = 0; i < count; i++) {
    const peer = await TcpPeer.connect(port);
    peers.push(peer);
    await peer.send(`hello ${i}\n`).catch(() => {});
    const line = await peer.readLine();
    if (line === `hello ${i}`) accepted++;
    else assert.match(line ?? "", /^ERROR too many connections/);
  }
  return accepted;
}

Deno.test("tcp_echo_server --workers 2 --max-conns 2: two connections in all, not two per worker", async () => {
  await using server = await startScript("tcp_echo_server", [
    "--workers=2",
    "--max-conns=2",
    "-q",
    "127.0.0.1:0",
  ]);
  const peers: TcpPeer[] = [];
  try {
    assert.equal(await acceptedOf(server.port, 12, peers), 2, server.output);
    // A place freed in either worker is free for the next client, whichever worker takes it.
    peers.splice(0, 2).forEach((p) => p.close());
    let again = 0;
    for (let tries = 0; tries < 50 && again === 0; tries++) {
      again = await acceptedOf(server.port, 1, peers);
    }
    assert.equal(again, 1, server.output);
  } finally {
    for (const peer of peers) peer.close();
  }
});

/** A WebSocket handshake on `/ws`; returns the peer and its status line. */
async function handshake(port: number, name: string) {
  const peer = await TcpPeer.connect(port);
  await peer.send(
    `GET /ws?name=${name} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
      "Sec-WebSocket-Version: 13\r\n\r\n",
  );
  const status = (await peer.readLine())!;
  while (((await peer.readLine()) ?? "") !== "") { /* headers */ }
  return { peer, status };
}

Deno.test("ws_chat_server --max-conns 2 counts WebSocket and TCP members together", async () => {
  await using server = await startScript("ws_chat_server", [
    "--host=127.0.0.1",
    "--port=0",
    "--tcp-port=0",
    "--max-conns=2",
    "-q",
  ]);
  const tcpLine = await server.stdout.waitFor(/Listening on tcp:.*\(chat over TCP\)/);
  const tcpPort = Number(/:(\d+) /.exec(tcpLine)![1]);
  const peers: TcpPeer[] = [];
  try {
    const tcp = await TcpPeer.connect(tcpPort);
    peers.push(tcp);
    assert.match((await tcp.readLine())!, /^\* Welcome/);
    const ws = await handshake(server.port, "one");
    peers.push(ws.peer);
    assert.match(ws.status, /^HTTP\/1.1 101/);
    const third = await handshake(server.port, "two");
    peers.push(third.peer);
    assert.match(third.status, /^HTTP\/1.1 503/, "the TCP member counts against WebSockets");
    const fourth = await TcpPeer.connect(tcpPort);
    peers.push(fourth);
    assert.match((await fourth.readLine())!, /^ERROR too many connections/);
  } finally {
    for (const peer of peers) peer.close();
  }
});

Deno.test("rpc_server --max-conns 1 counts its TCP and HTTP ports together", async () => {
  await using server = await startScript("rpc_server", [
    "--host=127.0.0.1",
    "--port=0",
    "--http-port=0",
    "--max-conns=1",
    "-q",
  ]);
  const httpLine = await server.stdout.waitFor(/Listening on http:\/\//);
  const httpPort = Number(/:(\d+)\/rpc/.exec(httpLine)![1]);
  const peers: TcpPeer[] = [];
  try {
    const tcp = await TcpPeer.connect(server.port);
    peers.push(tcp);
    await tcp.send('{"method":"Arith.Multiply","params":[{"A":7,"B":8}],"id":0}\n');
    assert.match((await tcp.readLine())!, /"result":56/);
    const http = await TcpPeer.connect(httpPort);
    peers.push(http);
    assert.match((await http.readLine())!, /^HTTP\/1\.1 503 /); // an HTTP answer on the HTTP port
    tcp.close();
    // Once the TCP client is gone its place serves HTTP.
    let status = 0;
    for (let tries = 0; tries < 50 && status !== 200; tries++) {
      const response = await fetch(`http://127.0.0.1:${httpPort}/rpc`, {
        method: "POST",
        body: '{"jsonrpc":"2.0","method":"Algorithm.Sum","params":{"X":3,"Y":4},"id":1}',
      }).catch(() => null);
      status = response?.status ?? 0;
      await response?.body?.cancel();
    }
    assert.equal(status, 200, server.output);
  } finally {
    for (const peer of peers) peer.close();
  }
});
