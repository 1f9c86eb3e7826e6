import assert from "node:assert/strict";
import {
  type BusEvent,
  type ChatEvent,
  ChatHub,
  DRAIN_POLL_MS,
  type HubOptions,
  type LeaveReason,
  MAX_PASS_BYTES,
  MAX_PRESENCE_DELAY_MS,
  type MemberSink,
  PASS_WRITES_PER_SECOND,
  PRESENCE_WRITES_PER_SECOND,
  type WireFormat,
} from "../lib/chat/hub.ts";
import { NameError } from "../lib/chat/chat_text.ts";
import { delay } from "../lib/io/deadline.ts";

const decoder = new TextDecoder();

/** A connection for tests: records what it is sent; can stall like a peer that never reads. */
class FakeSink implements MemberSink {
  readonly format: WireFormat;
  readonly chunks: Uint8Array[] = [];
  closed: LeaveReason | null = null;
  /** Writes never finish, as with a peer whose socket buffers are full. */
  stalled = false;
  /** Writes fail, as with a reset connection. */
  broken = false;
  bufferedBytes = 0;
  /** Writes made while the connection still buffered the last one (a WebSocket must get none). */
  writesWhileBuffered = 0;

  constructor(format: WireFormat = "json") {
    this.format = format;
  }

  write(data: Uint8Array): Promise<void> | void {
    if (this.broken) return Promise.reject(new Deno.errors.ConnectionReset("reset"));
    if (this.bufferedBytes > 0) this.writesWhileBuffered++;
    this.chunks.push(data);
    if (this.stalled) return new Promise(() => {});
  }

  buffered(): number {
    return this.bufferedBytes;
  }

  close(reason: LeaveReason): void {
    this.closed = reason;
  }

  /** Everything received, as JSON events. */
  get events(): ChatEvent[] {
    return this.chunks.flatMap((c) => decoder.decode(c).split("\n").map((l) => JSON.parse(l)));
  }

  /** Everything received, as text. */
  get text(): string {
    return this.chunks.map((c) => decoder.decode(c)).join("");
  }

  messages(): string[] {
    return this.events.filter((e) => e.type === "message").map((e) =>
      e.type === "message" ? `${e.name}: ${e.text}` : ""
    );
  }

  notices(): string[] {
    return this.events.flatMap((e) => e.type === "notice" ? [e.text] : []);
  }
}

/** A hub that announces presence at once, on a clock the test moves. */
function testHub(options: HubOptions = {}) {
  let now = Date.UTC(2024, 0, 2, 3, 4, 5);
  const hub = new ChatHub({ presenceDelayMs: 0, now: () => now, ...options });
  return { hub, tick: (ms: number) => now += ms };
}

Deno.test("ChatHub.join() assigns names, suffixing taken ones, and greets with who is online", () => {
  const { hub } = testHub();
  const a = new FakeSink();
  const b = new FakeSink();
  const c = new FakeSink();
  assert.equal(hub.join("alice", a).name, "alice");
  assert.equal(hub.join(" alice ", b).name, "alice-2");
  assert.equal(hub.join("alice", c).name, "alice-3");
  assert.deepEqual(hub.names(), ["alice", "alice-2", "alice-3"]);
  const welcome = c.events[0];
  assert.equal(welcome.type, "welcome");
  if (welcome.type === "welcome") {
    assert.equal(welcome.name, "alice-3");
    assert.equal(welcome.requested, "alice");
    assert.deepEqual(welcome.members, ["alice", "alice-2", "alice-3"]);
    assert.equal(welcome.count, 3);
  }
  hub.close();
});

Deno.test("ChatHub.join() refuses empty, long, spaced and control-character names", () => {
  const { hub } = testHub();
  for (
    const [name, pattern] of [
      ["", /empty/],
      ["   ", /empty/],
      ["x".repeat(33), /longer than 32 characters/],
      ["bad\x1b[31mname", /"bad\\x1b\[31mname": it contains U\+001B/],
      ["rtl\u202eevil", /control character/],
      ["two words", /spaces/],
    ]
  ) {
    assert.throws(() => hub.join(name as string, new FakeSink()), (e: Error) => {
      assert.ok(e instanceof NameError);
      assert.match(e.message, pattern as RegExp);
      return true;
    });
  }
  assert.equal(hub.size, 0);
  assert.equal(hub.join("<b>ok</b>", new FakeSink()).name, "<b>ok</b>", "HTML is just text");
  hub.close();
});

Deno.test("ChatHub.broadcast() stamps the server's time and the sender's name, in order", () => {
  const { hub, tick } = testHub();
  const a = new FakeSink();
  const b = new FakeSink("line");
  const alice = hub.join("alice", a);
  const bob = hub.join("bob", b, { echo: false });
  assert.ok(hub.broadcast(alice, "hello\nthere  "));
  tick(1000);
  assert.ok(hub.broadcast(bob, "hi alice"));
  assert.deepEqual(a.messages(), ["alice: hello there", "bob: hi alice"]);
  const message = a.events.find((e) => e.type === "message");
  assert.ok(message?.type === "message");
  assert.match(message.time, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  assert.equal(message.ts, Date.UTC(2024, 0, 2, 3, 4, 5));
  // bob (TCP, no echo) sees alice's line as seed 001 prints it, not his own.
  const lines = b.text.split("\n").filter((l) => /^\S+ \S+ \w+: /.test(l));
  assert.equal(lines.length, 1, b.text);
  assert.match(lines[0], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d alice: hello there$/);
  hub.close();
});

Deno.test("ChatHub.broadcast() encodes a message once: every member gets the same bytes", () => {
  const { hub } = testHub();
  const sinks = Array.from({ length: 5 }, () => new FakeSink());
  const lines = Array.from({ length: 3 }, () => new FakeSink("line"));
  const members = [...sinks, ...lines].map((s, i) => hub.join(`m${i}`, s));
  hub.broadcast(members[0], "once");
  const last = (s: FakeSink) => s.chunks[s.chunks.length - 1];
  for (const s of sinks) assert.equal(last(s), last(sinks[0]), "the same Uint8Array");
  for (const s of lines) assert.equal(last(s), last(lines[0]));
  assert.notEqual(last(sinks[0]), last(lines[0]));
  hub.close();
});

Deno.test("ChatHub refuses empty and over-long messages with a notice to the sender only", () => {
  const { hub } = testHub({ maxMessageBytes: 10 });
  const a = new FakeSink();
  const b = new FakeSink();
  const alice = hub.join("alice", a);
  hub.join("bob", b);
  assert.equal(hub.broadcast(alice, " \r\n "), false);
  assert.equal(hub.broadcast(alice, "é".repeat(6)), false); // 12 bytes
  assert.ok(hub.broadcast(alice, "é".repeat(5)));
  assert.deepEqual(a.notices(), [
    "Empty message: nothing to send",
    "Message too long: 12 bytes, the limit is 10",
  ]);
  assert.deepEqual(b.notices(), []);
  assert.deepEqual(b.messages(), ["alice: ééééé"]);
  hub.close();
});

Deno.test("ChatHub announces joins, leaves and renames; a crowd joining makes one announcement", async () => {
  const hub = new ChatHub({ presenceDelayMs: 20 });
  const a = new FakeSink("line");
  const alice = hub.join("alice", a);
  const sinks = Array.from({ length: 50 }, () => new FakeSink());
  const crowd = sinks.map((s, i) => hub.join(`p${i}`, s));
  await new Promise((r) => setTimeout(r, 60));
  const presence = sinks[0].events.filter((e) => e.type === "presence");
  assert.equal(presence.length, 1, "one announcement for 51 joins");
  const [crowdJoined] = presence;
  assert.ok(crowdJoined.type === "presence");
  const listed = crowdJoined.changes.length;
  assert.ok(listed > 5 && listed < 51, `${listed} of 51 joins listed`);
  assert.deepEqual(crowdJoined.more, { joined: 51 - listed, left: 0, renamed: 0 });
  assert.equal(crowdJoined.count, 51);
  assert.match(a.text, new RegExp(`\\* and ${51 - listed} more joined\\n$`));
  hub.leave(crowd[1], "timed out");
  hub.rename(crowd[2], "alice"); // taken: gets a suffix
  hub.broadcast(crowd[3], "after"); // flushes the announcement first
  const tail = a.text.split("\n").slice(-4, -1).map((l) => l.slice(20));
  assert.deepEqual(tail, ["* p1 left (timed out)", "* p2 is now known as alice-2", "p3: after"]);
  assert.equal(hub.leave(alice), true);
  assert.equal(hub.leave(alice), false, "leaving twice is harmless");
  hub.close();
});

Deno.test("ChatHub drops a member that never reads once 256 messages wait; others are unaffected", () => {
  const { hub } = testHub({ rate: 0 });
  const slow = new FakeSink("line");
  slow.stalled = true;
  const fast = new FakeSink();
  const sender = hub.join("sender", new FakeSink());
  const laggard = hub.join("laggard", slow);
  hub.join("fast", fast);
  for (let i = 0; i < 300; i++) hub.broadcast(sender, `m${i}`);
  assert.equal(laggard.present, false);
  assert.equal(slow.closed, "too slow");
  assert.equal(fast.messages().length, 300);
  assert.ok(fast.events.some((e) =>
    e.type === "presence" &&
    e.changes.some((c) => c.event === "leave" && c.name === "laggard" && c.reason === "too slow")
  ));
  assert.deepEqual(hub.names(), ["fast", "sender"]);
  hub.close();
});

Deno.test("ChatHub writes what queued during a slow write in one batch", async () => {
  const { hub } = testHub({ rate: 0 });
  let release: () => void = () => {};
  const writes: string[] = [];
  const sink: MemberSink = {
    format: "line",
    write(data) {
      writes.push(decoder.decode(data));
      return new Promise<void>((r) => release = r);
    },
    close() {},
  };
  const sender = hub.join("s", new FakeSink());
  hub.join("reader", sink, { echo: false });
  for (let i = 0; i < 3; i++) hub.broadcast(sender, `m${i}`);
  assert.equal(writes.length, 1, "the welcome is being written");
  release();
  await Promise.resolve();
  assert.equal(writes.length, 2);
  assert.equal(writes[1].split("\n").length - 1, 4, "presence and three messages in one write");
  release();
  hub.close();
});

Deno.test("ChatHub drops a member whose connection buffers more than the byte bound", () => {
  const { hub } = testHub({ maxQueueBytes: 1000 });
  const ws = new FakeSink();
  const member = hub.join("ws", ws);
  const other = hub.join("other", new FakeSink());
  ws.bufferedBytes = 990;
  hub.broadcast(other, "x".repeat(100));
  assert.equal(member.present, false);
  assert.equal(ws.closed, "too slow");
  hub.close();
});

Deno.test("ChatHub treats a failed write as a lost connection", async () => {
  const { hub } = testHub();
  const sink = new FakeSink();
  const watcher = new FakeSink("line");
  hub.join("watcher", watcher);
  sink.broken = true;
  const member = hub.join("gone", sink);
  await Promise.resolve();
  await Promise.resolve();
  assert.equal(member.present, false);
  assert.match(watcher.text, /\* gone left \(disconnected\)\n$/);
  hub.close();
});

Deno.test("ChatHub rate limit: 1000 messages at once, the burst goes, the rest refused with one notice", () => {
  const { hub, tick } = testHub({ rate: 10, burst: 20 });
  const flooder = new FakeSink();
  const other = new FakeSink();
  const flood = hub.join("flood", flooder);
  const calm = hub.join("calm", other);
  let sent = 0;
  for (let i = 0; i < 1000; i++) if (hub.broadcast(flood, `spam ${i}`)) sent++;
  assert.equal(sent, 20);
  assert.equal(flooder.notices().length, 1);
  assert.match(flooder.notices()[0], /^Slow down: at most 10 messages per second \(20 at once\)/);
  assert.ok(hub.broadcast(calm, "still here"), "others are not limited");
  assert.equal(other.messages().at(-1), "calm: still here");
  assert.equal(other.messages().length, 21);
  tick(1000); // ten more tokens
  for (let i = 0; i < 15; i++) if (hub.broadcast(flood, `later ${i}`)) sent++;
  assert.equal(sent, 30);
  assert.equal(flooder.notices().length, 2, "a new streak gets a new notice");
  hub.close();
});

Deno.test("ChatHub publishes local events to the bus and takes remote ones", () => {
  const published: BusEvent[] = [];
  const { hub } = testHub({ instanceId: "here", bus: { publish: (e) => published.push(e) } });
  const sink = new FakeSink();
  const alice = hub.join("alice", sink);
  hub.broadcast(alice, "hi");
  hub.rename(alice, "al");
  hub.leave(alice, "quit");
  assert.deepEqual(published.map((e) => e.type), ["join", "message", "rename", "leave"]);
  assert.ok(published.every((e) => e.origin === "here"));

  const local = new FakeSink();
  const bob = hub.join("bob", local);
  hub.receive({ type: "join", origin: "there", ts: 1, name: "carol" });
  hub.receive({ type: "join", origin: "there", ts: 1, name: "dave" });
  hub.receive({ type: "message", origin: "there", ts: 2, name: "carol", text: "from afar" });
  hub.receive({ type: "message", origin: "here", ts: 3, name: "bob", text: "my own echo" });
  assert.deepEqual(hub.names(), ["bob", "carol", "dave"]);
  assert.deepEqual(local.messages(), ["carol: from afar"]);
  // A remote name is taken here too.
  assert.equal(hub.join("carol", new FakeSink()).name, "carol-2");
  assert.deepEqual((hub.roster() as { names: string[] }).names.sort(), ["bob", "carol-2"]);
  hub.forget("there");
  assert.deepEqual(hub.names(), ["bob", "carol-2"]);
  assert.match(JSON.stringify(local.events.at(-1)), /"dave","reason":"instance lost"/);
  hub.leave(bob);
  hub.close();
});

Deno.test("ChatHub.close() tells everyone and refuses new members", () => {
  const { hub } = testHub();
  const sink = new FakeSink();
  hub.join("alice", sink);
  hub.close();
  assert.equal(sink.notices().at(-1), "The server is shutting down");
  assert.equal(hub.size, 0);
  assert.throws(() => hub.join("bob", new FakeSink()), /closed/);
});

Deno.test("ChatHub greets a large room's member with its first names; /who sends everyone in pieces of about 2 KiB", () => {
  const { hub } = testHub();
  for (let i = 0; i < 400; i++) hub.join(`member-${String(i).padStart(3, "0")}`, new FakeSink());
  const ws = new FakeSink();
  const line = new FakeSink("line");
  const wsMember = hub.join("ws", ws);
  const tcpMember = hub.join("tcp", line);
  const [welcome] = ws.events;
  assert.ok(welcome.type === "welcome");
  assert.equal(welcome.count, 401);
  assert.deepEqual(welcome.members, welcome.members.toSorted());
  assert.ok(welcome.members.length > 10 && welcome.members.length < 401);
  assert.ok(ws.chunks[0].byteLength <= 768, `a welcome of ${ws.chunks[0].byteLength} bytes`);
  assert.match(line.text, /^\* Welcome, tcp\. 402 online: /);

  const before = ws.chunks.length;
  assert.equal(hub.who(wsMember), true);
  const pieces = ws.events.slice(before).filter((e) => e.type === "members");
  assert.ok(pieces.length >= 2, `${pieces.length} members frames`);
  const names = pieces.flatMap((e) => e.type === "members" ? e.members : []);
  assert.deepEqual(names, hub.names());
  assert.equal(names.length, 402);
  let offset = 0;
  for (const piece of pieces) {
    assert.ok(piece.type === "members");
    assert.equal(piece.offset, offset);
    assert.equal(piece.count, 402);
    assert.equal(piece.end, piece === pieces.at(-1) ? true : undefined);
    offset += piece.members.length;
  }
  for (const chunk of ws.chunks) assert.ok(chunk.byteLength <= 2560, `${chunk.byteLength} bytes`);

  hub.who(tcpMember);
  assert.match(line.text, /\n\* 402 online: member-000, .*, and 302 more\n$/);
  hub.close();
});

Deno.test("ChatHub.who() in a room too large for its queue lists a quarter of the bound and keeps the member", async () => {
  const { hub } = testHub({ maxQueueBytes: 16 * 1024 });
  for (let i = 0; i < 2000; i++) hub.join(`someone-with-a-long-name-${i}`, new FakeSink());
  const sink = new FakeSink();
  const asker = hub.join("asker", sink);
  sink.bufferedBytes = 1; // its socket is busy: every piece waits in its queue
  assert.equal(hub.who(asker), true);
  assert.equal(asker.present, true, "asking did not get it dropped (the whole list is 60 KB)");
  sink.bufferedBytes = 0;
  await asker.flushed();
  const pieces = sink.events.filter((e) => e.type === "members");
  const last = pieces.at(-1)!;
  assert.ok(last.type === "members" && last.end === true && last.count === 2001);
  const listed = pieces.reduce((n, e) => n + (e.type === "members" ? e.members.length : 0), 0);
  assert.ok(listed > 50 && listed < 2001, `${listed} names listed`);
  hub.close();
});

Deno.test("ChatHub.who() counts against the member's rate, like a message", () => {
  const { hub } = testHub({ rate: 1, burst: 2 });
  const sink = new FakeSink();
  const member = hub.join("asker", sink);
  assert.deepEqual([hub.who(member), hub.who(member), hub.who(member)], [true, true, false]);
  assert.match(sink.notices().join(), /Slow down/);
  hub.close();
});

Deno.test("ChatHub announces a crowd in one small frame: the first changes in order, the rest counted", async () => {
  const hub = new ChatHub({ presenceDelayMs: 20 });
  const watcher = new FakeSink();
  hub.join("watcher", watcher);
  const early = Array.from({ length: 150 }, (_, i) => hub.join(`early-${i}`, new FakeSink()));
  // A room of 150 gathers for 75 ms (PRESENCE_WRITES_PER_SECOND), of 350 for 175 ms.
  await new Promise((r) => setTimeout(r, 150));
  const crowd = Array.from({ length: 200 }, (_, i) => hub.join(`person-${i}`, new FakeSink()));
  for (const member of early.slice(0, 30)) hub.leave(member, "quit");
  await new Promise((r) => setTimeout(r, 300));
  const frames = watcher.chunks.slice(1);
  assert.equal(frames.length, 2, "one frame per announcement");
  for (const frame of frames) assert.ok(frame.byteLength <= 768, `${frame.byteLength} bytes`);
  const [, , second] = watcher.events;
  assert.ok(second.type === "presence");
  const listed = second.changes.map((c) => c.name);
  assert.deepEqual(listed, crowd.slice(0, listed.length).map((m) => m.name));
  assert.deepEqual(second.more, { joined: 200 - listed.length, left: 30, renamed: 0 });
  assert.equal(second.count, 1 + 150 + 200 - 30);
  hub.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("ChatHub gathers announcements longer in a large room, so a join storm does not write everyone every 50 ms", async () => {
  const hub = new ChatHub({ presenceDelayMs: 1 });
  const watcher = new FakeSink();
  hub.join("watcher", watcher);
  for (let i = 0; i < 1999; i++) hub.join(`m-${i}`, new FakeSink());
  // The first join's window was 1 ms: the joins made in one turn come as one announcement.
  await sleep(50);
  const first = watcher.events.filter((e) => e.type === "presence").length;
  assert.equal(first, 1);
  // Now 2000 members: the next announcement waits 2000 / PRESENCE_WRITES_PER_SECOND s.
  const wait = 2000 * 1000 / PRESENCE_WRITES_PER_SECOND;
  assert.ok(wait >= 500 && wait <= MAX_PRESENCE_DELAY_MS, `${wait} ms`);
  hub.join("late", new FakeSink());
  await sleep(100);
  assert.equal(watcher.events.filter((e) => e.type === "presence").length, first, "not yet");
  for (let waited = 0; waited < 5000; waited += 50) {
    if (watcher.events.filter((e) => e.type === "presence").length > first) break;
    await sleep(50);
  }
  const last = watcher.events.at(-1)!;
  assert.ok(last.type === "presence");
  assert.deepEqual(last.changes, [{ event: "join", name: "late" }]);
  await hub.close();
});

Deno.test("ChatHub never writes to a WebSocket whose last write is pending; what queued goes as one frame of lines", async () => {
  const { hub } = testHub({ rate: 0 });
  const ws = new FakeSink();
  hub.join("ws", ws);
  const sender = hub.join("sender", new FakeSink());
  const before = ws.chunks.length;
  ws.bufferedBytes = 100; // the runtime still holds the last frame
  for (let i = 0; i < 5; i++) hub.broadcast(sender, `m${i}`);
  assert.equal(ws.chunks.length, before, "nothing is written while the socket is busy");
  ws.bufferedBytes = 0;
  hub.broadcast(sender, "m5"); // the next send finds it drained
  assert.equal(ws.chunks.length, before + 1);
  const frame = decoder.decode(ws.chunks.at(-1)!);
  assert.deepEqual(
    frame.split("\n").map((l) => JSON.parse(l).text),
    ["m0", "m1", "m2", "m3", "m4", "m5"],
  );

  ws.bufferedBytes = 100;
  hub.broadcast(sender, "m6");
  hub.broadcast(sender, "m7");
  ws.bufferedBytes = 0;
  await sleep(DRAIN_POLL_MS * 20); // nobody speaks: the hub's drain timer writes them
  assert.equal(ws.chunks.length, before + 2);
  assert.deepEqual(ws.messages().slice(-2), ["sender: m6", "sender: m7"]);
  assert.equal(ws.writesWhileBuffered, 0);
  hub.close();
});

Deno.test("ChatHub cuts a WebSocket's backlog into frames of about 2 KiB, in order", async () => {
  const { hub } = testHub({ rate: 0 });
  const ws = new FakeSink();
  hub.join("ws", ws);
  const sender = hub.join("sender", new FakeSink(), { echo: false });
  const before = ws.chunks.length;
  ws.bufferedBytes = 1;
  for (let i = 0; i < 100; i++) hub.broadcast(sender, `message number ${i}`);
  ws.bufferedBytes = 0;
  // Each drain writes one frame and leaves the socket busy until the next look.
  const frames = () => ws.chunks.slice(before);
  for (let tries = 0; ws.messages().length < 100 && tries < 200; tries++) {
    await sleep(DRAIN_POLL_MS * 2);
  }
  assert.deepEqual(
    ws.messages(),
    Array.from({ length: 100 }, (_, i) => `sender: message number ${i}`),
  );
  assert.ok(frames().length >= 5, `${frames().length} frames`);
  for (const frame of frames()) assert.ok(frame.byteLength <= 2048, `${frame.byteLength} bytes`);
  hub.close();
});

Deno.test("ChatHub drops a busy WebSocket only when its queue passes the byte bound", () => {
  const { hub } = testHub({ rate: 0, maxQueue: 4, maxQueueBytes: 4096 });
  const ws = new FakeSink();
  const member = hub.join("ws", ws);
  const sender = hub.join("sender", new FakeSink(), { echo: false });
  ws.bufferedBytes = 100; // never drains: the peer does not read
  let sent = 0;
  const text = (i: number) => `message ${String(i).padStart(4, "0")}`;
  while (member.present && sent < 1000) hub.broadcast(sender, text(sent++));
  // A burst read in one turn of the event loop lands in the queue before the
  // socket can drain, so WebSocket queues count bytes, not messages.
  assert.ok(sent > 4, `dropped after ${sent} messages`);
  assert.equal(member.present, false);
  assert.equal(ws.closed, "too slow");
  const event = new TextEncoder().encode(JSON.stringify({
    type: "message",
    time: "2024-01-02 03:04:05",
    ts: Date.UTC(2024, 0, 2, 3, 4, 5),
    name: "sender",
    text: text(0),
  })).byteLength;
  assert.equal(sent, Math.floor((4096 - 100) / event) + 1, "dropped by the message that passed it");
  assert.equal(ws.writesWhileBuffered, 0);
  hub.close();
});

/**
 * A room over its write budget: 2 members at 40 member writes a second
 * may be written every 50 ms. Returns once the joins' announcement has
 * been passed and a gap has gone by, with the members' sinks emptied.
 */
async function busyRoom(names: string[], options: HubOptions = {}) {
  const { hub } = testHub({ rate: 0, passWritesPerSecond: names.length * 20, ...options });
  const sinks = names.map(() => new FakeSink());
  const members = names.map((name, i) => hub.join(name, sinks[i]));
  await delay(130);
  for (const sink of sinks) sink.chunks.length = 0;
  return { hub, sinks, members };
}

/** What a member received, a write per entry, each as its events' short forms. */
function writesOf(sink: FakeSink): string[][] {
  return sink.chunks.map((c) =>
    decoder.decode(c).split("\n").map((line) => {
      const e = JSON.parse(line) as ChatEvent;
      if (e.type === "message") return `${e.name}: ${e.text}`;
      if (e.type === "notice") return `notice: ${e.text}`;
      return e.type;
    })
  );
}

Deno.test("ChatHub sends a busy room's messages held for its next pass in one write per member, in order", async () => {
  const { hub, sinks: [a, b], members: [alice] } = await busyRoom(["alice", "bob"]);
  for (let i = 1; i <= 4; i++) hub.broadcast(alice, `m${i}`);
  assert.deepEqual(writesOf(b), [["alice: m1"]], "the first goes at once");
  await delay(80);
  for (const sink of [a, b]) {
    assert.deepEqual(writesOf(sink), [["alice: m1"], ["alice: m2", "alice: m3", "alice: m4"]]);
  }
  assert.equal(a.chunks[1], b.chunks[1], "the held messages are joined once for everyone");
  hub.close();
});

Deno.test("ChatHub: a member who joins while messages are held gets none from before; one who quits gets them first", async () => {
  const { hub, sinks: [a, b], members: [alice] } = await busyRoom(["alice", "bob"]);
  hub.broadcast(alice, "before");
  hub.broadcast(alice, "held");
  const c = new FakeSink();
  hub.join("carol", c);
  hub.leave(alice, "quit");
  assert.deepEqual(writesOf(a), [["alice: before"], ["alice: held", "presence"]]);
  await delay(80);
  assert.deepEqual(writesOf(b), [["alice: before"], ["alice: held", "presence", "presence"]]);
  assert.deepEqual(writesOf(c), [["welcome"], ["presence", "presence"]]);
  hub.close();
});

Deno.test("ChatHub: an unechoed member's held own message is skipped; notices and close come after what is held", async () => {
  const { hub } = testHub({ rate: 0, passWritesPerSecond: 40 });
  const a = new FakeSink();
  const b = new FakeSink();
  const alice = hub.join("alice", a);
  const bob = hub.join("bob", b, { echo: false });
  await delay(130);
  a.chunks.length = b.chunks.length = 0;
  hub.broadcast(alice, "one");
  hub.broadcast(bob, "two");
  hub.broadcast(alice, "three");
  hub.broadcast(bob, "");
  assert.deepEqual(writesOf(b), [
    ["alice: one"],
    ["alice: three"],
    ["notice: Empty message: nothing to send"],
  ]);
  hub.broadcast(alice, "four");
  hub.close();
  assert.deepEqual(writesOf(a), [
    ["alice: one"],
    ["bob: two", "alice: three"],
    ["alice: four"],
    ["notice: The server is shutting down"],
  ]);
});

Deno.test("ChatHub never holds a room whose pass takes under a millisecond of budget, nor a quiet one", async () => {
  const size = PASS_WRITES_PER_SECOND / 1000 - 1;
  const small = await busyRoom(Array.from({ length: size }, (_, i) => `m${i}`), {
    passWritesPerSecond: PASS_WRITES_PER_SECOND,
  });
  for (let i = 0; i < 3; i++) small.hub.broadcast(small.members[0], `now ${i}`);
  assert.equal(small.sinks[size - 1].chunks.length, 3, "each message written at once");
  small.hub.close();

  const large = await busyRoom(Array.from({ length: 300 }, (_, i) => `m${i}`), {
    passWritesPerSecond: PASS_WRITES_PER_SECOND,
  });
  const gap = 300 * 1000 / PASS_WRITES_PER_SECOND;
  for (let i = 0; i < 3; i++) {
    large.hub.broadcast(large.members[0], `quiet ${i}`);
    assert.equal(large.sinks[299].chunks.length, i + 1, "a message after a quiet gap goes at once");
    await delay(gap + 2);
  }
  large.hub.close();
});

Deno.test("ChatHub: a member whose write fails during a pass leaves after it; the others get the pass first", async () => {
  const { hub } = testHub({ rate: 0, passWritesPerSecond: 60 });
  const a = new FakeSink();
  const b = new FakeSink();
  let throwing = false;
  const gone: MemberSink = {
    format: "json",
    write() {
      if (throwing) throw new Deno.errors.BrokenPipe("gone");
    },
    close() {},
  };
  const alice = hub.join("alice", a);
  hub.join("gone", gone);
  hub.join("bob", b);
  await delay(130);
  a.chunks.length = b.chunks.length = 0;
  throwing = true;
  hub.broadcast(alice, "m1");
  assert.deepEqual(writesOf(b), [["alice: m1"]]);
  await delay(80);
  assert.deepEqual(writesOf(b), [["alice: m1"], ["presence"]]);
  assert.deepEqual(hub.names(), ["alice", "bob"]);
  hub.close();
});

Deno.test("ChatHub writes held events at once once they fill a frame, so a pass stays far under the bounds", async () => {
  const { hub, sinks: [, b], members: [alice] } = await busyRoom(["alice", "bob"]);
  const text = "x".repeat(500);
  for (let i = 0; i < 200; i++) hub.broadcast(alice, `${i} ${text}`);
  await delay(80);
  assert.equal(hub.names().length, 2, "nobody dropped");
  const sizes = b.chunks.map((c) => c.byteLength);
  assert.ok(
    Math.max(...sizes) < MAX_PASS_BYTES + 1024,
    `largest write ${Math.max(...sizes)} bytes`,
  );
  assert.ok(sizes.length >= 200 * 500 / MAX_PASS_BYTES, `${sizes.length} writes`);
  assert.deepEqual(
    b.messages().map((m) => Number(m.split(" ")[1])),
    Array.from({ length: 200 }, (_, i) => i),
  );
  hub.close();
});
