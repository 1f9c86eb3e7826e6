/**
 * One chat room across servers and threads, end to end: tcp_chat_server
 * and ws_chat_server instances joined through the real RabbitMQ broker
 * (`--bus`), an instance killed with SIGKILL, the broker restarted, and
 * ws_chat_server with two workers.
 */
import assert from "node:assert/strict";
import { BROKER_URL, brokerMissing, testExchange, withBrokerStopped } from "./rabbitmq.ts";
import { runScript, type ScriptProcess, startScript, TcpPeer, withTimeout } from "./helpers.ts";

const ignore = brokerMissing;
/** Short beats so a killed instance is noticed within a second. */
const BEAT = "--bus-heartbeat=200ms";

/** A TCP member: connects, sends its nickname, reads the welcome. */
async function tcpMember(port: number, name: string): Promise<TcpPeer> {
  const peer = await TcpPeer.connect(port);
  await peer.readLine();
  await peer.send(`${name}\n`);
  assert.match((await peer.readLine())!, /^\* Welcome, /);
  return peer;
}

/** Reads lines until one matches (time stamps removed), returning every line read. */
async function until(peer: TcpPeer, pattern: RegExp, timeoutMs = 10_000): Promise<string[]> {
  const seen: string[] = [];
  return await withTimeout(
    (async () => {
      while (true) {
        const line = await peer.reader.readLine();
        if (line === null) throw new Error(`Closed before ${pattern}; saw ${seen.join("\n")}`);
        seen.push(line.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d /, ""));
        if (pattern.test(seen.at(-1)!)) return seen;
      }
    })(),
    timeoutMs,
    `a line matching ${pattern} (saw ${JSON.stringify(seen)})`,
  );
}

type WsEvent = { type: string; name?: string; text?: string; count?: number; members?: string[] };

/** A WebSocket member of ws_chat_server: the events it received, and waiting for one. */
class WsMember implements AsyncDisposable {
  readonly events: WsEvent[] = [];
  readonly closed: Promise<void>;
  #ws: WebSocket;
  #wake: (() => void) | null = null;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.binaryType = "arraybuffer";
    ws.onmessage = (e) => {
      const text = typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data);
      // A frame holds one event per line (several when the socket was busy).
      for (const line of text.split("\n")) this.events.push(JSON.parse(line));
      this.#wake?.();
    };
    this.closed = new Promise((resolve) => ws.addEventListener("close", () => resolve()));
  }

  static async open(port: number, name: string): Promise<WsMember> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?name=${name}`);
    const member = new WsMember(ws);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error(`Cannot open ws for ${name}`));
    });
    return member;
  }

  send(text: string): void {
    this.#ws.send(text);
  }

  async waitFor(check: (e: WsEvent) => boolean, what: string, timeoutMs = 10_000) {
    await withTimeout(
      (async () => {
        while (!this.events.some(check)) await new Promise<void>((r) => this.#wake = r);
      })(),
      timeoutMs,
      `${what} (got ${JSON.stringify(this.events)})`,
    );
  }

  messages(): string[] {
    return this.events.filter((e) => e.type === "message").map((e) => `${e.name}: ${e.text}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#ws.close();
    await this.closed;
  }
}

function chatServer(exchange: string, ...extra: string[]): Promise<ScriptProcess> {
  return startScript("tcp_chat_server", [
    "127.0.0.1:0",
    `--bus=${BROKER_URL}`,
    `--bus-exchange=${exchange}`,
    BEAT,
    "--rate=0", // The tests send bursts; the rate limit is tcp_chat_server's own test's.
    ...extra,
  ]);
}

Deno.test({
  name: "three chat servers on one broker form one room; a killed one's members are gone",
  ignore,
  async fn() {
    await using exchange = testExchange();
    await using a = await chatServer(exchange.name);
    await using b = await chatServer(exchange.name);
    await using c = await startScript("ws_chat_server", [
      "--host=127.0.0.1",
      "--port=0",
      "--tcp-port=off",
      `--bus=${BROKER_URL}`,
      `--bus-exchange=${exchange.name}`,
      BEAT,
    ]);
    assert.ok(!a.stderr.text.includes("guest:guest"), "the password is never printed");
    assert.match(a.stderr.text, /Bus: joined room "lobby" on amqp:\/\/guest:\*\*\*@127\.0\.0\.1/);
    await using alice = await tcpMember(a.port, "alice");
    await using bob = await tcpMember(b.port, "bob");
    await using carol = await WsMember.open(c.port, "carol");
    await until(alice, /^\* carol joined$/);
    await until(bob, /^\* carol joined$/);
    await bob.send("/who\n");
    assert.equal((await until(bob, /online/)).at(-1), "* 3 online: alice, bob, carol");

    const lines = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`);
    await alice.send(lines.map((l) => `${l}\n`).join(""));
    const seen = await until(bob, /^alice: line 30$/);
    assert.deepEqual(seen.filter((l) => l.startsWith("alice:")), lines.map((l) => `alice: ${l}`));
    await carol.waitFor((e) => e.text === "line 30", "line 30 at carol");
    assert.deepEqual(carol.messages(), lines.map((l) => `alice: ${l}`));
    carol.send("hello from the browser side");
    await until(alice, /^carol: hello from the browser side$/);

    await bob.send("/quit\n");
    await until(alice, /^\* bob left$/);
    await carol.waitFor(
      (e) => JSON.stringify(e).includes('"event":"leave","name":"bob"'),
      "bob's leave at carol",
    );

    c.kill("SIGKILL");
    await c.status;
    await until(alice, /^\* carol left \(instance lost\)$/, 15_000);
    await alice.send("/who\n");
    assert.equal((await until(alice, /online/)).at(-1), "* 1 online: alice");
    a.kill("SIGTERM");
    assert.equal((await a.exit()).code, 0, a.output);
  },
});

Deno.test({
  name: "chat servers keep serving while the broker restarts, say so once, and the room heals",
  ignore,
  async fn() {
    await using exchange = testExchange();
    await using a = await chatServer(exchange.name);
    await using b = await chatServer(exchange.name);
    await using alice = await tcpMember(a.port, "alice");
    await using amy = await tcpMember(a.port, "amy");
    await using bob = await tcpMember(b.port, "bob");
    await until(alice, /^\* bob joined$/);
    let during: string[] = [];
    await withBrokerStopped(async () => {
      during = await until(alice, /^\* bob left \(instance lost\)$/);
      await alice.send("only amy hears this\n");
      await until(amy, /^alice: only amy hears this$/);
    });
    const after = await until(alice, /^\* bob joined$/, 30_000);
    const all = [...during, ...after];
    assert.equal(
      all.filter((l) => l.startsWith("ERROR Lost RabbitMQ")).length,
      1,
      all.join("\n"),
    );
    assert.ok(all.includes("* Reconnected to RabbitMQ: the room is whole again"), all.join("\n"));
    await alice.send("together again\n");
    const bobSaw = await until(bob, /^alice: together again$/, 10_000);
    assert.ok(!bobSaw.includes("alice: only amy hears this"));
    assert.match(a.stderr.text, /Bus: lost RabbitMQ .*the room is local-only/);
  },
});

Deno.test("chat servers refuse a bad --bus with a usage error that hides the password", async () => {
  const bad = await runScript("tcp_chat_server", ["127.0.0.1:0", "--bus=http://u:hunter2@x"]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(
    bad.stderr,
    /Invalid --bus "http:\/\/u:\*\*\*@x\/?": must start with amqp:\/\/ or amqps:\/\//,
  );
  assert.ok(!bad.stderr.includes("hunter2"));
  const room = await runScript("ws_chat_server", ["--port=0", "--room=a*b"]);
  assert.equal(room.code, 2, room.stderr);
  assert.match(room.stderr, /Invalid --room "a\*b"/);
});

Deno.test({
  name: "a chat server whose broker login is refused exits 1 without printing the password",
  ignore,
  async fn() {
    const out = await runScript("tcp_chat_server", [
      "127.0.0.1:0",
      "--bus=amqp://guest:hunter2@127.0.0.1:5672",
    ]);
    assert.equal(out.code, 1, out.stderr);
    assert.match(out.stderr, /Cannot join the room on amqp:\/\/guest:\*\*\*@127\.0\.0\.1:5672/);
    assert.ok(!out.stderr.includes("hunter2"));
  },
});

Deno.test("ws_chat_server --workers 2: clients spread over both threads share one room", async () => {
  await using server = await startScript("ws_chat_server", [
    "--host=127.0.0.1",
    "--port=0",
    "--tcp-port=0",
    "--workers=2",
  ]);
  assert.match(server.stdout.text, /Listening on http:\/\/127\.0\.0\.1:\d+ \(2 workers\)/);
  const tcpPort = Number(
    /tcp:\/\/127\.0\.0\.1:(\d+)/.exec(
      await server.stdout.waitFor("chat over TCP"),
    )![1],
  );
  const members: WsMember[] = [];
  try {
    for (let i = 0; i < 12; i++) members.push(await WsMember.open(server.port, `m${i}`));
    await using term = await tcpMember(tcpPort, "term");
    for (const m of members) {
      await m.waitFor((e) => e.type === "presence" && e.count === 13, "13 in the room");
    }
    await term.send("/who\n");
    assert.match((await until(term, /online/)).at(-1)!, /^\* 13 online: m0, m1, m10, m11, m2/);
    assert.match(server.stderr.text, /joined .*\(worker 0\)/);
    assert.match(server.stderr.text, /joined .*\(worker 1\)/);
    members[5].send("to everyone");
    for (const m of members) await m.waitFor((e) => e.text === "to everyone", "the message");
    await until(term, /^m5: to everyone$/);
    server.kill("SIGTERM");
    for (const m of members) await withTimeout(m.closed, 10_000, "the server to close sockets");
    assert.deepEqual(await term.readAll(), ["* The server is shutting down"]);
    assert.equal((await server.exit()).code, 0, server.output);
  } finally {
    for (const m of members) await m[Symbol.asyncDispose]();
  }
});
