import assert from "node:assert/strict";
import { AmqpChatBus, type AmqpChatBusOptions, busFailure } from "../lib/chat/chat_bus.ts";
import { ChatHub } from "../lib/chat/hub.ts";
import { BROKER_URL, brokerMissing, testExchange, withBrokerStopped } from "./rabbitmq.ts";
import { LineSink, waitUntil } from "./line_sink.ts";

const ignore = brokerMissing;

/** One server instance: its hub, its bus, and what it logged. */
async function instance(
  exchange: string,
  options: AmqpChatBusOptions = {},
): Promise<{ hub: ChatHub; bus: AmqpChatBus; log: string[] } & AsyncDisposable> {
  const log: string[] = [];
  const hub = new ChatHub({ presenceDelayMs: 0, rate: 0 });
  const bus = await AmqpChatBus.connect(hub, BROKER_URL, {
    exchange,
    heartbeatMs: 200,
    maxBackoffMs: 1_000,
    onLog: (line) => log.push(line),
    ...options,
  });
  return {
    hub,
    bus,
    log,
    async [Symbol.asyncDispose]() {
      hub.close();
      await bus.close();
    },
  };
}

Deno.test("busFailure() retries network failures, not a refused login or a missing permission", () => {
  const url = "amqp://guest:s3cret@rabbit:5672";
  const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
  assert.equal(busFailure(refused, url).fatal, false);
  const login = new Error("Handshake terminated by server: 403 (ACCESS-REFUSED) Login was refused");
  assert.equal(busFailure(login, url).fatal, true);
  const denied = Object.assign(new Error("getaddrinfo EPERM rabbit"), { code: "EPERM" });
  assert.deepEqual(busFailure(denied, url), {
    fatal: true,
    message: "getaddrinfo EPERM rabbit (allow it: deno run --allow-net=...,rabbit:5672)",
  });
});

Deno.test({
  name: "AmqpChatBus: three instances share one room: joins, ordered messages, /who, leaves",
  ignore,
  async fn() {
    await using exchange = testExchange();
    await using a = await instance(exchange.name);
    await using b = await instance(exchange.name);
    await using c = await instance(exchange.name);
    const alice = new LineSink();
    const am = a.hub.join("alice", alice);
    const bob = new LineSink();
    b.hub.join("bob", bob);
    const carol = new LineSink();
    const cm = c.hub.join("carol", carol);
    for (const hub of [a.hub, b.hub, c.hub]) {
      await waitUntil(() => hub.names().length === 3, `3 names in ${hub.names()}`);
      assert.deepEqual(hub.names(), ["alice", "bob", "carol"]);
    }
    for (let i = 1; i <= 50; i++) a.hub.broadcast(am, `a${i}`);
    for (let i = 1; i <= 50; i++) c.hub.broadcast(cm, `c${i}`);
    await bob.waitFor("alice: a50");
    await bob.waitFor("carol: c50");
    const expect = (who: string, p: string) =>
      Array.from({ length: 50 }, (_, i) => `${who}: ${p}${i + 1}`);
    assert.deepEqual(bob.lines.filter((l) => l.startsWith("alice:")), expect("alice", "a"));
    assert.deepEqual(bob.lines.filter((l) => l.startsWith("carol:")), expect("carol", "c"));
    await carol.waitFor("alice: a50");
    assert.deepEqual(carol.lines.filter((l) => l.startsWith("alice:")), expect("alice", "a"));
    c.hub.leave(cm);
    await alice.waitFor("* carol left");
    await bob.waitFor("* carol left");
    assert.deepEqual(a.hub.names(), ["alice", "bob"]);
    assert.equal(b.bus.link.stats.duplicates, 0);
  },
});

Deno.test({
  name: "AmqpChatBus: an instance that goes silent is forgotten; one that closes says bye",
  ignore,
  async fn() {
    await using exchange = testExchange();
    await using a = await instance(exchange.name);
    const alice = new LineSink();
    a.hub.join("alice", alice);
    {
      await using b = await instance(exchange.name);
      b.hub.join("bob", new LineSink());
      await alice.waitFor("* bob joined");
    }
    await alice.waitFor("* bob left (server shutdown)");
    // Heartbeats are what reveal a killed instance; the end-to-end test kills one for real.
    await using c = await instance(exchange.name, { heartbeatMs: 60_000 });
    c.hub.join("carol", new LineSink());
    await alice.waitFor("* carol joined");
    await alice.waitFor("* carol left (instance lost)");
  },
});

Deno.test({
  name: "AmqpChatBus: a refused login is an error that does not show the password",
  ignore,
  async fn() {
    const hub = new ChatHub();
    await assert.rejects(
      AmqpChatBus.connect(hub, "amqp://guest:wrong-secret@127.0.0.1:5672"),
      (e: Error) => e.message.includes("guest:***@") && !e.message.includes("wrong-secret"),
    );
    hub.close();
  },
});

Deno.test("AmqpChatBus: an unreachable broker leaves the room local-only, retrying", async () => {
  const port = freePort();
  const log: string[] = [];
  const hub = new ChatHub({ presenceDelayMs: 0 });
  const bus = await AmqpChatBus.connect(hub, `amqp://guest:pw@127.0.0.1:${port}`, {
    onLog: (line) => log.push(line),
    minBackoffMs: 20,
    maxBackoffMs: 40,
  });
  try {
    assert.equal(bus.connected, false);
    const alice = new LineSink();
    const am = hub.join("alice", alice);
    hub.broadcast(am, "still served");
    assert.ok(alice.lines.includes("alice: still served"));
    await waitUntil(() => log.some((l) => l.startsWith("Bus: reconnecting failed")), "a retry");
    assert.ok(log[0].includes(`amqp://guest:***@127.0.0.1:${port}`), log[0]);
  } finally {
    hub.close();
    await bus.close();
  }
});

Deno.test({
  name: "AmqpChatBus: the room heals after the broker restarts",
  ignore,
  async fn() {
    await using exchange = testExchange();
    await using a = await instance(exchange.name);
    await using b = await instance(exchange.name);
    const alice = new LineSink();
    const am = a.hub.join("alice", alice);
    const bob = new LineSink();
    b.hub.join("bob", bob);
    await alice.waitFor("* bob joined");
    await withBrokerStopped(async () => {
      await alice.waitFor(
        "ERROR Lost RabbitMQ: the room is local-only until it is back; " +
          "members on other servers cannot hear you",
      );
      await bob.waitFor("* alice left (instance lost)");
      a.hub.broadcast(am, "while apart");
      assert.ok(alice.lines.includes("alice: while apart"));
    });
    await alice.waitFor("* Reconnected to RabbitMQ: the room is whole again", 30_000);
    await bob.waitFor("* Reconnected to RabbitMQ: the room is whole again", 30_000);
    await waitUntil(() => a.hub.names().length === 2 && b.hub.names().length === 2, "rosters");
    a.hub.broadcast(am, "together again");
    await bob.waitFor("alice: together again");
    assert.ok(!bob.lines.includes("alice: while apart"));
    assert.equal(alice.lines.filter((l) => l.startsWith("ERROR Lost RabbitMQ")).length, 1);
  },
});

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}
