import assert from "node:assert/strict";
import { Logger } from "../lib/cli/log.ts";
import { UsageError } from "../lib/cli/cli.ts";
import type { NetAddress } from "../lib/net/addr.ts";
import {
  MAX_UDP_PAYLOAD,
  parseUdpServerArgs,
  previewDatagram,
  RateLimiter,
  serveUdp,
  type ServeUdpOptions,
} from "../lib/net/udp.ts";
import { UdpPeer } from "./udp_peer.ts";

const encoder = new TextEncoder();

/** A logger whose lines the test can read. */
function memoryLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = new Logger({
    timestamps: false,
    sink: {
      writeSync(p) {
        lines.push(new TextDecoder().decode(p).trimEnd());
        return p.byteLength;
      },
    },
  });
  return { logger, lines };
}

const LOCAL: ServeUdpOptions = {
  address: { transport: "tcp", hostname: "127.0.0.1", port: 0 },
  onListen: () => {},
};

Deno.test("RateLimiter allows N per source per window and counts the rest", () => {
  const limiter = new RateLimiter(2);
  assert.deepEqual(
    ["a", "a", "a", "b", "a", "b", "b"].map((s) => limiter.allow(s)),
    [true, true, false, true, false, true, false],
  );
  assert.deepEqual(limiter.nextWindow(), { dropped: 3, sources: 2 });
  assert.equal(limiter.allow("a"), true, "a new window starts afresh");
  assert.deepEqual(limiter.nextWindow(), { dropped: 0, sources: 0 });
});

Deno.test("RateLimiter with 0 allows everything; a full table drops new sources", () => {
  const open = new RateLimiter(0);
  for (let i = 0; i < 1000; i++) assert.equal(open.allow("a"), true);
  const small = new RateLimiter(5, 2);
  assert.equal(small.allow("a"), true);
  assert.equal(small.allow("b"), true);
  assert.equal(small.allow("c"), false, "a third source does not fit the table");
  assert.equal(small.allow("a"), true, "known sources still count");
  assert.deepEqual(small.nextWindow(), { dropped: 1, sources: 1 });
});

Deno.test("previewDatagram trims the newlines, escapes control bytes and elides long data", () => {
  assert.equal(previewDatagram(encoder.encode("hello\r\n")), "hello");
  // The book's udpC.go adds a newline to the line it read: both go.
  assert.equal(previewDatagram(encoder.encode("hello\n\n")), "hello");
  assert.equal(previewDatagram(new Uint8Array()), "");
  assert.equal(
    previewDatagram(encoder.encode("\x1b[31mred\nnext\x00")),
    "\\x1b[31mred\\x0anext\\x00",
  );
  const long = previewDatagram(new Uint8Array(5000).fill(0x61));
  assert.equal(long, "a".repeat(200) + "... (4800 more bytes)");
  assert.equal(previewDatagram(new Uint8Array(5000).fill(0x61), Infinity), "a".repeat(5000));
});

Deno.test("serveUdp() answers empty and 65,507-byte datagrams and survives a throwing handler", async () => {
  const { logger, lines } = memoryLogger();
  await using server = serveUdp((data) => {
    if (data.byteLength === 5) throw new Error("boom");
    return data;
  }, { ...LOCAL, logger });
  await using peer = new UdpPeer();
  await peer.send(server.addr.port, new Uint8Array());
  assert.equal((await peer.next()).data.byteLength, 0);
  const big = new Uint8Array(MAX_UDP_PAYLOAD).map((_, i) => (i * 31) % 256);
  await peer.send(server.addr.port, big);
  assert.deepEqual((await peer.next()).data, big);
  await peer.send(server.addr.port, "crash");
  assert.equal(await peer.ask(server.addr.port, "still here"), "still here");
  assert.match(lines.join("\n"), /Datagram from 127\.0\.0\.1:\d+: Error: boom/);
  assert.equal(server.received, 4);
  assert.equal(server.replied, 3);
});

Deno.test("serveUdp() --rate drops excess datagrams per address and logs them once", async () => {
  const { logger, lines } = memoryLogger();
  await using server = serveUdp(() => encoder.encode("ok"), { ...LOCAL, logger, rate: 3 });
  await using peer = new UdpPeer();
  for (let i = 0; i < 40; i++) await peer.send(server.addr.port, `#${i}`);
  const replies = await peer.drain(300);
  // A window may end during the burst: at most two windows' worth get through.
  assert.ok(replies.length >= 3 && replies.length <= 6, `got ${replies.length} replies`);
  await server.shutdown();
  const drops = lines.filter((l) => l.startsWith("Rate limit: dropped"));
  assert.ok(drops.length >= 1 && drops.length <= 2, lines.join("\n"));
  assert.match(drops[0], /from 1 address \(limit 3\/s per address\)/);
});

Deno.test("serveUdp() never answers the echo port 7, where a forged datagram would loop forever", async () => {
  const { logger, lines } = memoryLogger();
  await using server = serveUdp((data) => data, { ...LOCAL, logger });
  let echoPeer: UdpPeer;
  try {
    echoPeer = new UdpPeer("127.0.0.1", 7);
  } catch {
    return; // Port 7 needs privileges here; nothing to check.
  }
  await using _echo = echoPeer;
  await echoPeer.send(server.addr.port, "loop?");
  assert.deepEqual(await echoPeer.drain(200), []);
  await server.shutdown();
  assert.match(lines.join("\n"), /Ignored 1 datagram from source port 0 or a UDP service port/);
});

Deno.test("serveUdp() stops on its signal and handlers can stop it", async () => {
  const controller = new AbortController();
  const server = serveUdp((data) => data, { ...LOCAL, signal: controller.signal });
  controller.abort();
  await server.finished;
  let stopper: ReturnType<typeof serveUdp> | null = null;
  stopper = serveUdp((_data, _peer, self) => {
    void self.shutdown();
    return null;
  }, LOCAL);
  await using peer = new UdpPeer();
  await peer.send(stopper.addr.port, "STOP");
  await stopper.finished;
  await assert.rejects(peer.next(100));
});

Deno.test("parseUdpServerArgs() reads PORT, HOST:PORT, --port on --host and --rate", () => {
  const defaults = { host: "0.0.0.0", rate: "0" };
  const plain = parseUdpServerArgs(defaults, []);
  assert.deepEqual(plain.settings.address, { transport: "tcp", hostname: "0.0.0.0", port: 1234 });
  assert.equal(plain.rate, 0);
  const given = parseUdpServerArgs({ host: "::1", rate: "7", port: "53" }, []);
  assert.deepEqual(given.settings.address, { transport: "tcp", hostname: "::1", port: 53 });
  assert.equal(given.rate, 7);
  assert.equal(
    (parseUdpServerArgs(defaults, ["[::1]:9"]).settings.address as NetAddress).hostname,
    "::1",
  );
  assert.throws(() => parseUdpServerArgs(defaults, ["x:70000"]), UsageError);
  assert.throws(
    () => parseUdpServerArgs({ ...defaults, rate: "many" }, []),
    /Invalid --rate "many"/,
  );
});
