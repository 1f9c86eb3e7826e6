import assert from "node:assert/strict";
import { ChatHub } from "../lib/chat/hub.ts";
import { checkLinkMessage, type LinkMessage, RoomLink } from "../lib/chat/room_link.ts";
import { LineSink, waitUntil } from "./line_sink.ts";

/** A fan-out transport in memory: every message reaches every link, its sender included. */
class MemoryNet {
  readonly links = new Set<RoomLink>();
  readonly cut = new Set<RoomLink>();
  /** Every message sent, for tests that replay one. */
  readonly sent: LinkMessage[] = [];
  #queue: LinkMessage[] = [];
  #draining = false;

  /** Delivers in sending order, as a broker does: what a link sends while receiving waits its turn. */
  #drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    try {
      for (let m = this.#queue.shift(); m; m = this.#queue.shift()) {
        for (const other of this.links) if (!this.cut.has(other)) other.receive(m);
      }
    } finally {
      this.#draining = false;
    }
  }

  add(id: string, options: { heartbeatMs?: number } = {}): { hub: ChatHub; link: RoomLink } {
    const hub = new ChatHub({ instanceId: id, presenceDelayMs: 0, rate: 0 });
    const link: RoomLink = new RoomLink(hub, (m) => {
      if (this.cut.has(link)) return;
      this.sent.push(m);
      this.#queue.push(m);
      this.#drain();
    }, { heartbeatMs: options.heartbeatMs ?? 60_000 });
    hub.attachBus(link);
    this.links.add(link);
    link.connected();
    return { hub, link };
  }

  close(): void {
    for (const link of this.links) link.close();
  }
}

Deno.test("RoomLink: members on two hubs share joins, messages in order, renames and leaves", () => {
  const net = new MemoryNet();
  try {
    const a = net.add("a");
    const b = net.add("b");
    const alice = new LineSink();
    const bob = new LineSink();
    const am = a.hub.join("alice", alice);
    const bm = b.hub.join("bob", bob);
    assert.deepEqual(a.hub.names(), ["alice", "bob"]);
    assert.deepEqual(b.hub.names(), ["alice", "bob"]);
    for (let i = 1; i <= 5; i++) a.hub.broadcast(am, `m${i}`);
    b.hub.rename(bm, "bobby");
    b.hub.broadcast(bm, "hi alice");
    b.hub.leave(bm);
    assert.deepEqual(bob.lines.filter((l) => l.startsWith("alice:")), [
      "alice: m1",
      "alice: m2",
      "alice: m3",
      "alice: m4",
      "alice: m5",
    ]);
    assert.deepEqual(alice.lines.slice(-4), [
      "alice: m5",
      "* bob is now known as bobby",
      "bobby: hi alice",
      "* bobby left",
    ]);
    assert.ok(alice.lines.includes("* bob joined"));
    assert.deepEqual(a.hub.names(), ["alice"]);
  } finally {
    net.close();
  }
});

Deno.test("RoomLink: a newcomer learns who is already in the room", () => {
  const net = new MemoryNet();
  try {
    const a = net.add("a");
    a.hub.join("alice", new LineSink());
    a.hub.join("amy", new LineSink());
    const b = net.add("b");
    assert.deepEqual(b.hub.names(), ["alice", "amy"]);
    assert.equal(b.link.peers().get("a"), 2);
  } finally {
    net.close();
  }
});

Deno.test("RoomLink: a message delivered twice is shown once", () => {
  const net = new MemoryNet();
  try {
    const a = net.add("a");
    const b = net.add("b");
    const bob = new LineSink();
    b.hub.join("bob", bob);
    a.hub.broadcast(a.hub.join("alice", new LineSink()), "once");
    const sent = net.sent.find((m) => m.kind === "event" && m.event.type === "message")!;
    b.link.receive(sent);
    b.link.receive(structuredClone(sent));
    assert.equal(bob.lines.filter((l) => l === "alice: once").length, 1);
    assert.equal(b.link.stats.duplicates, 2);
  } finally {
    net.close();
  }
});

Deno.test("RoomLink: a hub that stops beating is forgotten and its members announced gone", async () => {
  const net = new MemoryNet();
  try {
    const a = net.add("a", { heartbeatMs: 20 });
    const b = net.add("b", { heartbeatMs: 20 });
    const alice = new LineSink();
    a.hub.join("alice", alice);
    b.hub.join("bob", new LineSink());
    net.cut.add(b.link); // As if killed: no bye, no beats.
    await waitUntil(() => !a.hub.names().includes("bob"), "bob to be forgotten", 5_000);
    assert.deepEqual(a.hub.names(), ["alice"]);
    assert.ok(alice.lines.includes("* bob left (instance lost)"), alice.text);
  } finally {
    net.close();
  }
});

Deno.test("RoomLink: a hub that shuts down says bye and its members leave at once", () => {
  const net = new MemoryNet();
  try {
    const a = net.add("a");
    const b = net.add("b");
    const alice = new LineSink();
    a.hub.join("alice", alice);
    b.hub.join("bob", new LineSink());
    b.hub.close();
    b.link.close();
    assert.deepEqual(a.hub.names(), ["alice"]);
    assert.ok(alice.lines.includes("* bob left (server shutdown)"), alice.text);
  } finally {
    net.close();
  }
});

Deno.test("RoomLink: a cut transport makes the room local-only, told once, and it heals", () => {
  const net = new MemoryNet();
  try {
    const a = net.add("a");
    const b = net.add("b");
    const alice = new LineSink();
    const am = a.hub.join("alice", alice);
    const bob = new LineSink();
    b.hub.join("bob", bob);

    net.cut.add(a.link);
    a.link.disconnected("connection reset");
    a.link.disconnected("connection reset");
    b.link.disconnected("connection reset");
    assert.deepEqual(a.hub.names(), ["alice"]);
    assert.equal(alice.lines.filter((l) => l.startsWith("ERROR Lost the bus")).length, 1);
    a.hub.broadcast(am, "only here");
    a.hub.join("carol", new LineSink()); // Joins while cut off.

    net.cut.delete(a.link);
    b.link.connected();
    a.link.connected();
    assert.deepEqual(a.hub.names(), ["alice", "bob", "carol"]);
    assert.deepEqual(b.hub.names(), ["alice", "bob", "carol"]);
    assert.ok(alice.lines.includes("* Reconnected to the bus: the room is whole again"));
    assert.ok(!bob.lines.includes("alice: only here"));
    a.hub.broadcast(am, "healed");
    assert.ok(bob.lines.includes("alice: healed"), bob.text);
  } finally {
    net.close();
  }
});

Deno.test("checkLinkMessage() accepts what links send and rejects anything else", () => {
  const ok: LinkMessage = {
    kind: "event",
    origin: "a",
    seq: 3,
    event: { type: "message", origin: "a", ts: 1, name: "alice-2", text: "hi" },
  };
  assert.deepEqual(checkLinkMessage(JSON.parse(JSON.stringify(ok))), ok);
  assert.deepEqual(checkLinkMessage({ kind: "beat", origin: "a", seq: 1, extra: 1 }), {
    kind: "beat",
    origin: "a",
    seq: 1,
  });
  for (
    const bad of [
      null,
      [],
      { kind: "beat", origin: "a", seq: 0 },
      { kind: "beat", origin: 5, seq: 1 },
      { kind: "nope", origin: "a", seq: 1 },
      { kind: "hello", origin: "a", seq: 1, names: ["two words"] },
      { ...ok, event: { ...ok.event, origin: "b" } },
      { ...ok, event: { type: "leave", origin: "a", ts: 1, name: "x", reason: "bored" } },
      { ...ok, event: { type: "message", origin: "a", ts: "soon", name: "x", text: "hi" } },
    ]
  ) {
    assert.throws(() => checkLinkMessage(bad), SyntaxError, JSON.stringify(bad));
  }
});

for (const order of ["bca", "cab"]) {
  Deno.test(`RoomLink: a name given twice while split is settled on healing (${order})`, () => {
    nameClash(order);
  });
}

function nameClash(order: string): void {
  const net = new MemoryNet();
  try {
    const a = net.add("a");
    const b = net.add("b");
    const c = net.add("c");
    c.hub.join("carol", new LineSink());
    net.cut.add(a.link);
    for (const { link } of [a, b, c]) link.disconnected("split");
    const bobOnA = new LineSink();
    const bobOnB = new LineSink();
    a.hub.join("bob", bobOnA);
    b.hub.join("bob", bobOnB);
    net.cut.delete(a.link);
    const hubs: Record<string, { link: RoomLink }> = { a, b, c };
    for (const id of order) hubs[id].link.connected();
    for (const { hub } of [a, b, c]) assert.deepEqual(hub.names(), ["bob", "bob-2", "carol"]);
    assert.ok(bobOnB.lines.includes('* "bob" is taken on another server: you are now bob-2'));
    assert.ok(!bobOnA.lines.some((l) => l.includes("you are now")));
    assert.ok(bobOnA.lines.includes("* bob is now known as bob-2"), bobOnA.text);
  } finally {
    net.close();
  }
}

Deno.test("RoomLink: a hub that missed another's hello asks for the rosters when it hears from it", () => {
  const net = new MemoryNet();
  try {
    net.add("a");
    const b = net.add("b");
    const bob = new LineSink();
    b.hub.join("bob", bob);
    net.cut.add(b.link); // b's queue is not bound yet: it misses c's hello and carol's join.
    const c = net.add("c");
    const carol = c.hub.join("carol", new LineSink());
    net.cut.delete(b.link);
    assert.deepEqual(b.hub.names(), ["bob"]);
    c.hub.broadcast(carol, "anyone?");
    assert.ok(bob.lines.includes("carol: anyone?"));
    assert.deepEqual(b.hub.names(), ["bob", "carol"]);
    assert.deepEqual(c.hub.names(), ["bob", "carol"]);
  } finally {
    net.close();
  }
});
