/**
 * soak: every server at once for a bounded time (default 60 s), each under
 * good clients and the attacks of issue 18 mixed in (slow HTTP bodies and
 * heads, held idle connections, never-reading floods, terminal escapes,
 * look-alike chat names). Per server it prints RSS at start, peak and
 * end, open descriptors, good clients served, good messages lost (must be
 * 0), raw ESC bytes in its output (must be 0) and its exit code after
 * SIGTERM (must be 0); it exits 1 when any of those fails.
 *
 *     deno task bench soak                 # 60 s
 *     deno task bench soak --seconds 10    # the short form CI runs
 *
 * @module
 */
import { parseArgs } from "node:util";
import { LineReader, writeAll } from "../lib/io/lines.ts";
import { delay } from "../lib/io/deadline.ts";
import { type ScriptProcess, startScript } from "../tests/helpers.ts";
import { printTable } from "./yardsticks.ts";

const encoder = new TextEncoder();
/** Text every good client sends, so that raw ESC in a log is caught. */
const ESCAPES = "\x1b[2J\x1b]0;title\x07";
/**
 * How long a good client waits for one answer before counting the message
 * lost: long, because ten servers, their floods and their logs share two
 * loaded cores, and slow is not lost.
 */
const ANSWER_MS = 30_000;
/** HTTP deadlines short enough to fire within a short soak. */
const HTTP_LIMITS = ["--head-timeout=2s", "--body-timeout=3s"];

/** What one server did during the soak. */
interface Stats {
  served: number;
  lost: number;
  rss: number[];
  fds: number[];
}

/** One server of the soak: how to start it and what runs against it. */
interface Target {
  name: string;
  args: string[];
  /** Good clients (run in parallel, each looping until `until`). */
  good: Array<(ports: number[], stats: Stats, until: number) => Promise<void>>;
  /** Attacks (each looping until `until`). */
  attacks: Array<(ports: number[], until: number) => Promise<void>>;
}

/** Races `promise` against a timeout; null when it took too long. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([promise, new Promise<null>((r) => timer = setTimeout(r, ms, null))]);
  } finally {
    clearTimeout(timer);
  }
}

/** A line client that counts answers: each exchange sends one line and checks one answer. */
function lineClient(
  check: (sent: string, got: string) => boolean,
  make = (i: number) => `good ${i} ${ESCAPES}`,
  port = 0,
) {
  return async (ports: number[], stats: Stats, until: number) => {
    while (Date.now() < until) {
      let conn: Deno.TcpConn | null = null;
      try {
        conn = await Deno.connect({ hostname: "127.0.0.1", port: ports[port] });
        const lines = new LineReader(conn, { maxLineBytes: 1 << 20 });
        let ok = true;
        for (let i = 0; i < 20; i++) {
          const sent = make(i);
          await writeAll(conn, encoder.encode(sent + "\n"));
          const got = await within(lines.readLine(), ANSWER_MS);
          if (got === null || !check(sent, got)) {
            stats.lost++;
            ok = false;
            break;
          }
        }
        if (ok) stats.served++;
      } catch {
        stats.lost++;
      } finally {
        conn?.close();
      }
    }
  };
}

/** Two chat members: one talks, the other must hear every message. */
function chatPair(port = 0) {
  return async (ports: number[], stats: Stats, until: number) => {
    let round = 0;
    while (Date.now() < until) {
      round++;
      const join = async (name: string) => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: ports[port] });
        const lines = new LineReader(conn, { maxLineBytes: 1 << 20 });
        await lines.readLine(); // the prompt
        await writeAll(conn, encoder.encode(`${name}\n`));
        const welcome = await lines.readLine();
        return { conn, lines, name: /^\* Welcome, (\S+?)[ .(]/.exec(welcome ?? "")?.[1] ?? name };
      };
      const talker = await join(`talk${round}`);
      const hearer = await join(`hear${round}`);
      try {
        const count = 20;
        for (let i = 0; i < count; i++) {
          await writeAll(talker.conn, encoder.encode(`m${i} ${ESCAPES}\n`));
        }
        let heard = 0;
        while (heard < count) {
          const line = await within(hearer.lines.readLine(), ANSWER_MS);
          if (line === null) break;
          if (line.includes(` ${talker.name}: m${heard} `)) heard++;
        }
        stats.lost += count - heard;
        if (heard === count) stats.served++;
      } finally {
        talker.conn.close();
        hearer.conn.close();
      }
    }
  };
}

/** Fetches and checks a response; counts it served or lost. */
function httpClient(
  request: (port: number) => Promise<Response>,
  check: (text: string) => boolean,
  port = 0,
) {
  return async (ports: number[], stats: Stats, until: number) => {
    while (Date.now() < until) {
      try {
        const response = await request(ports[port]);
        if (response.ok && check(await response.text())) stats.served++;
        else stats.lost++;
      } catch {
        stats.lost++;
      }
    }
  };
}

/** A UDP client: each datagram must come back (three tries, UDP may drop one). */
function udpClient(port = 0) {
  return async (ports: number[], stats: Stats, until: number) => {
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      for (let i = 0; Date.now() < until; i++) {
        const data = encoder.encode(`d${i} ${ESCAPES}`);
        let back = false;
        for (let tries = 0; tries < 3 && !back; tries++) {
          await socket.send(data, { transport: "udp", hostname: "127.0.0.1", port: ports[port] });
          const got = await within(socket.receive(), 1_000);
          back = got !== null && new TextDecoder().decode(got[0]) === `d${i} ${ESCAPES}`;
        }
        if (back) stats.served++;
        else stats.lost++;
      }
    } finally {
      socket.close();
    }
  };
}

/** A WebSocket echo client: each message must come back. */
function wsClient(path: string, port = 0) {
  return async (ports: number[], stats: Stats, until: number) => {
    while (Date.now() < until) {
      const ws = new WebSocket(`ws://127.0.0.1:${ports[port]}${path}`);
      const messages: string[] = [];
      let wake: (() => void) | null = null;
      ws.onmessage = (e) => {
        messages.push(String(e.data));
        wake?.();
      };
      const closed = new Promise<void>((resolve) => ws.onclose = () => resolve());
      ws.onerror = () => {};
      try {
        const open = await within(new Promise((r) => ws.onopen = r), ANSWER_MS);
        if (open === null) throw new Error("no handshake");
        let ok = true;
        for (let i = 0; i < 20 && ok; i++) {
          ws.send(`w${i} ${ESCAPES}`);
          const got = await within(
            new Promise<void>((r) => messages.length > 0 ? r() : wake = r),
            ANSWER_MS,
          );
          ok = got !== null && messages.shift() === `w${i} ${ESCAPES}`;
        }
        if (ok) stats.served++;
        else stats.lost++;
      } catch {
        stats.lost++;
      } finally {
        ws.close();
        await within(closed, 2_000);
      }
    }
  };
}

/** Holds `count` connections that send `text` and then nothing, reopening them as they close. */
function holdConnections(count: number, text: string, port = 0) {
  return async (ports: number[], until: number) => {
    const hold = async () => {
      while (Date.now() < until) {
        try {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: ports[port] });
          if (text) await writeAll(conn, encoder.encode(text));
          // Wait for the server to close it (a deadline) or for the end of the soak.
          const buf = new Uint8Array(4096);
          const closedByServer = (async () => {
            try {
              while ((await conn.read(buf)) !== null);
            } catch {
              // Reset: closed too.
            }
          })();
          await within(closedByServer, Math.max(0, until - Date.now()));
          conn.close();
          await closedByServer;
        } catch {
          await delay(100);
        }
      }
    };
    await Promise.all(Array.from({ length: count }, hold));
  };
}

/** A client that sends lines as fast as it can and never reads the answers. */
function neverReads(port = 0) {
  return async (ports: number[], until: number) => {
    const line = encoder.encode("x".repeat(1000) + "\n");
    while (Date.now() < until) {
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: ports[port] });
        try {
          const stop = Math.min(until, Date.now() + 3_000);
          while (Date.now() < stop) {
            if (await within(writeAll(conn, line), 500) === null) break; // the server stopped reading
          }
        } finally {
          conn.close();
        }
        await delay(Math.min(2_000, Math.max(0, until - Date.now()))); // bursts, not a blackout
      } catch {
        await delay(100);
      }
    }
  };
}

/** Joins a chat with look-alikes of a present name; any taken as is counts as lost. */
function lookAlikes(port = 0) {
  return async (ports: number[], stats: Stats, until: number) => {
    const names = ["alic\u0435", "\uff41lice", "alice\u200b", "ali\u00adce", "a1ice"];
    const alice = await Deno.connect({ hostname: "127.0.0.1", port: ports[port] });
    const lines = new LineReader(alice, { maxLineBytes: 1 << 20 });
    try {
      await lines.readLine();
      await writeAll(alice, encoder.encode("alice\n"));
      const welcome = await lines.readLine();
      if (!welcome?.startsWith("* Welcome, alice.")) return; // another round holds "alice"
      while (Date.now() < until) {
        for (const name of names) {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: ports[port] });
          try {
            const reader = new LineReader(conn, { maxLineBytes: 1 << 20 });
            await reader.readLine();
            await writeAll(conn, encoder.encode(`${name}\n`));
            const answer = (await within(reader.readLine(), ANSWER_MS)) ?? "";
            if (
              answer.startsWith(`* Welcome, ${name}.`) || answer.startsWith(`* Welcome, ${name} `)
            ) {
              stats.lost++;
            } else stats.served++;
          } finally {
            conn.close();
          }
        }
        await delay(200);
      }
    } finally {
      alice.close();
    }
  };
}

const SLOW_BODY = "POST /rpc HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{";
const PARTIAL_HEAD = "GET / HTTP/1.1\r\nHost: x\r\n";
const rpcBody = (a: number): string =>
  JSON.stringify({ jsonrpc: "2.0", method: "Arith.Multiply", params: [a, 3], id: a });

const TARGETS: Target[] = [
  {
    name: "tcp_echo_server",
    args: ["127.0.0.1:0"],
    good: [lineClient((s, g) => s === g), lineClient((s, g) => s === g)],
    attacks: [neverReads(), holdConnections(50, "")],
  },
  {
    name: "tcp_time_server",
    args: ["127.0.0.1:0"],
    good: [lineClient((_, g) => /^\d{4}-\d\d-\d\dT/.test(g))],
    attacks: [holdConnections(50, "no newline, ever")],
  },
  {
    name: "conc_tcp_server",
    args: ["127.0.0.1:0"],
    good: [lineClient((_, g) => g.startsWith("Client number: "))],
    attacks: [neverReads(), holdConnections(50, "")],
  },
  {
    name: "tcp_random_server",
    args: ["127.0.0.1:0"],
    good: [lineClient((_, g) => /^-?\d+$/.test(g) || g.startsWith("ERROR"))],
    attacks: [holdConnections(50, "")],
  },
  {
    name: "rpc_server",
    args: ["--host=127.0.0.1", "--port=0", "--http-port=0", ...HTTP_LIMITS],
    good: [
      lineClient((s, g) => JSON.parse(g).result === JSON.parse(s).params[0] * 3, rpcBody),
      httpClient(
        (port) => fetch(`http://127.0.0.1:${port}/rpc`, { method: "POST", body: rpcBody(7) }),
        (text) => JSON.parse(text).result === 21,
        1,
      ),
    ],
    attacks: [holdConnections(100, SLOW_BODY, 1), holdConnections(50, PARTIAL_HEAD, 1)],
  },
  {
    name: "http_server",
    args: ["127.0.0.1:0", ...HTTP_LIMITS],
    good: [
      httpClient(
        (port) => fetch(`http://127.0.0.1:${port}/%1b%5b2J/hello`),
        (text) => text.startsWith("Hello, you've requested: "),
      ),
    ],
    attacks: [holdConnections(100, SLOW_BODY), holdConnections(50, PARTIAL_HEAD)],
  },
  {
    name: "udp_echo_server",
    args: ["--echo", "127.0.0.1:0"],
    good: [udpClient()],
    attacks: [],
  },
  {
    name: "tcp_chat_server",
    args: ["127.0.0.1:0"],
    good: [chatPair(), lookAlikes()],
    attacks: [holdConnections(50, "")],
  },
  {
    name: "ws_echo_server",
    args: ["--host=127.0.0.1", "--port=0"],
    good: [wsClient("/ws")],
    attacks: [holdConnections(50, PARTIAL_HEAD)],
  },
  {
    name: "ws_chat_server",
    args: ["--host=127.0.0.1", "--port=0", "--tcp-port=0"],
    good: [chatPair(1)],
    attacks: [holdConnections(50, "", 1), holdConnections(50, PARTIAL_HEAD)],
  },
];

/** Resident memory of a process in MB, from /proc. */
function rssMb(pid: number): number {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1];
    return kb ? Math.round(Number(kb) / 1024) : 0;
  } catch {
    return 0;
  }
}

/** Descriptors a process has open. */
function openFds(pid: number): number {
  try {
    return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
  } catch {
    return 0;
  }
}

/** The ports of a server's ready lines, in order. */
async function portsOf(server: ScriptProcess, count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let from = 0; ports.length < count;) {
    await server.stdout.waitFor(/Listening on /, 15_000, from);
    const lines = server.stdout.lines;
    for (; from < lines.length && ports.length < count; from++) {
      const match = /Listening on \w+:\/\/.*:(\d+)/.exec(lines[from]);
      if (match) ports.push(Number(match[1]));
    }
  }
  return ports;
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { seconds: { type: "string", default: "60" } } });
  const seconds = Number(values.seconds);
  if (!(seconds > 0 && seconds <= 3600)) {
    console.error(`soak: Invalid --seconds "${values.seconds}": expected 1-3600`);
    return 2;
  }
  console.log(`Soak: ${TARGETS.length} servers at once for ${seconds} s (machine shared, loaded)`);
  const servers = await Promise.all(TARGETS.map((t) => startScript(t.name, t.args)));
  try {
    const ports = await Promise.all(
      servers.map((s, i) =>
        portsOf(s, /--(http|tcp)-port=0/.test(TARGETS[i].args.join(" ")) ? 2 : 1)
      ),
    );
    const stats: Stats[] = TARGETS.map(() => ({ served: 0, lost: 0, rss: [], fds: [] }));
    const sample = () =>
      servers.forEach((s, i) => {
        stats[i].rss.push(rssMb(s.child.pid));
        stats[i].fds.push(openFds(s.child.pid));
      });
    sample();
    const sampler = setInterval(sample, 500);
    const until = Date.now() + seconds * 1000;
    await Promise.all(TARGETS.flatMap((t, i) => [
      ...t.good.map((run) => run(ports[i], stats[i], until)),
      ...t.attacks.map((run) => run(ports[i], until)),
    ]));
    await delay(2_000); // let closed connections be noticed before the last sample
    clearInterval(sampler);
    sample();
    const rows = [];
    let failed = false;
    for (const [i, server] of servers.entries()) {
      server.kill("SIGTERM");
      const code = await within(server.exit(15_000).then((s) => s.code), 16_000) ?? -1;
      const output = server.stdout.text + server.stderr.text;
      const rawEsc = output.split("\x1b").length - 1;
      const s = stats[i];
      const ok = s.lost === 0 && rawEsc === 0 && code === 0 && s.served > 0;
      if (!ok) failed = true;
      rows.push({
        server: TARGETS[i].name,
        "RSS start/peak/end MB": `${s.rss[0]}/${Math.max(...s.rss)}/${s.rss.at(-1)}`,
        "fds start/peak/end": `${s.fds[0]}/${Math.max(...s.fds)}/${s.fds.at(-1)}`,
        "good served": s.served,
        "good lost": s.lost,
        "raw ESC": rawEsc,
        "SIGTERM exit": code,
        verdict: ok ? "ok" : "FAIL",
      });
    }
    printTable(`soak, ${seconds} s, ${new Date().toISOString().slice(0, 10)}`, rows);
    return failed ? 1 : 0;
  } finally {
    for (const server of servers) await server[Symbol.asyncDispose]();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
