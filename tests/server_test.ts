import assert from "node:assert/strict";
import { LineReader } from "../lib/io/lines.ts";
import { Logger } from "../lib/cli/log.ts";
import { removeStaleSocket, serveTcp, type Session } from "../lib/net/server.ts";
import { delay, TcpPeer } from "./helpers.ts";

const quiet = new Logger({ quiet: true, sink: { writeSync: (p) => p.byteLength } });
const local = { transport: "tcp", hostname: "127.0.0.1", port: 0 } as const;
const silent = { logger: quiet, onListen: () => {} };

/** Answers each line with "got: LINE". */
async function answerLines(session: Session): Promise<void> {
  for await (const line of new LineReader(session)) await session.writeAll(`got: ${line}\n`);
}

function portOf(addr: Deno.Addr): number {
  assert.ok(addr.transport === "tcp");
  return addr.port;
}

Deno.test("serveTcp() serves many clients at once and counts them", async () => {
  await using server = await serveTcp(answerLines, { ...silent, address: local });
  const port = portOf(server.addr);
  await using a = await TcpPeer.connect(port);
  await using b = await TcpPeer.connect(port);
  await b.send("from b\n");
  await a.send("from a\n");
  assert.equal(await a.readLine(), "got: from a");
  assert.equal(await b.readLine(), "got: from b");
  assert.equal(server.connections, 2);
  assert.equal(server.accepted, 2);
});

Deno.test("serveTcp() refuses connection N+1 beyond maxConns with an error line", async () => {
  await using server = await serveTcp(answerLines, { ...silent, address: local, maxConns: 2 });
  const port = portOf(server.addr);
  await using a = await TcpPeer.connect(port);
  await using b = await TcpPeer.connect(port);
  await a.send("x\n");
  await b.send("y\n");
  await a.readLine();
  await b.readLine();
  await using c = await TcpPeer.connect(port);
  assert.deepEqual(await c.readAll(), ["ERROR too many connections, try again later"]);
  await a.send("still here\n");
  assert.equal(await a.readLine(), "got: still here");
});

Deno.test("serveTcp() closes a client that says nothing for the idle timeout", async () => {
  await using server = await serveTcp(answerLines, {
    ...silent,
    address: local,
    idleTimeoutMs: 200,
  });
  const port = portOf(server.addr);
  await using idle = await TcpPeer.connect(port);
  await using busy = await TcpPeer.connect(port);
  for (let i = 0; i < 5; i++) {
    await busy.send(`tick ${i}\n`);
    assert.equal(await busy.readLine(), `got: tick ${i}`);
    await delay(80);
  }
  assert.deepEqual(await idle.readAll(2_000), ["ERROR idle timeout, closing"]);
  await busy.send("after\n");
  assert.equal(await busy.readLine(), "got: after");
});

Deno.test("shutdown() lets a busy handler finish its reply, closes idle clients, then resolves", async () => {
  let release!: () => void;
  const slow = new Promise<void>((resolve) => release = resolve);
  const server = await serveTcp(async (session) => {
    const reader = new LineReader(session);
    for (let line = await reader.readLine(); line !== null; line = await reader.readLine()) {
      if (line === "slow") await slow;
      await session.writeAll(`done: ${line}\n`);
    }
  }, { ...silent, address: local });
  const port = portOf(server.addr);
  await using idle = await TcpPeer.connect(port);
  await using busy = await TcpPeer.connect(port);
  await idle.send("hi\n");
  assert.equal(await idle.readLine(), "done: hi");
  await busy.send("slow\n");
  await delay(50);
  const stopped = server.shutdown();
  assert.equal(await idle.readLine(), null, "the idle client is closed at once");
  release();
  assert.equal(await busy.readLine(), "done: slow", "the busy handler's reply still arrives");
  assert.equal(await busy.readLine(), null);
  await stopped;
  await assert.rejects(
    Deno.connect({ hostname: "127.0.0.1", port }),
    Deno.errors.ConnectionRefused,
  );
});

Deno.test("a handler that throws affects only its own client", async () => {
  await using server = await serveTcp(async (session) => {
    for await (const line of new LineReader(session)) {
      if (line === "boom") throw new Error("handler failed");
      await session.writeAll(`ok ${line}\n`);
    }
  }, { ...silent, address: local });
  const port = portOf(server.addr);
  await using bad = await TcpPeer.connect(port);
  await using good = await TcpPeer.connect(port);
  await bad.send("boom\n");
  assert.deepEqual(await bad.readAll(), []);
  await good.send("1\n");
  assert.equal(await good.readLine(), "ok 1");
});

Deno.test("serveTcp() listens on a unix socket, replacing a stale socket file", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/echo.sock`;
  try {
    const stale = Deno.listen({ transport: "unix", path });
    stale.close(); // leaves the file behind, as a crashed server would
    await using server = await serveTcp(answerLines, {
      ...silent,
      address: { transport: "unix", path },
    });
    const conn = await Deno.connect({ transport: "unix", path });
    await conn.write(new TextEncoder().encode("u\n"));
    const reader = new LineReader(conn);
    assert.equal(await reader.readLine(), "got: u");
    conn.close();
    await assert.rejects(removeStaleSocket(path), Deno.errors.AddrInUse);
    await server.shutdown();
    await assert.rejects(Deno.lstat(path), Deno.errors.NotFound, "the socket file is removed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("removeStaleSocket() leaves a regular file alone", async () => {
  const file = await Deno.makeTempFile();
  try {
    await assert.rejects(removeStaleSocket(file), /exists and is no socket/);
  } finally {
    await Deno.remove(file);
  }
});
