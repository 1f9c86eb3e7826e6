/**
 * im bench: load runs against `im_server`.
 *
 * - private messages between 100 online pairs (each sender keeps a window
 *   of messages in flight to its partner): messages/s and the p50/p99 of
 *   the time from send to receipt by the partner;
 * - the offline store: messages/s acknowledged as stored for offline
 *   users, and messages/s delivered when they log in;
 * - logins/s with the real work factor (PBKDF2, 600,000 iterations).
 *
 * The Go yardstick in the same run is `tcpload` against `go-tcpecho` with
 * as many connections and the same window: a plain line round trip, the
 * floor under any relay. There is no Go IM server to compare with.
 *
 *     deno task bench im
 *     deno run -A bench/im_bench.ts --pairs 100 --messages 2000
 *
 * @module
 */
import { parseArgs } from "node:util";
import { LineReader, writeAll } from "../lib/io/lines.ts";
import type { ScriptProcess } from "../tests/helpers.ts";
import { printTable, ratio, runLoad, startGoPeer, startNetkit } from "./yardsticks.ts";

const encoder = new TextEncoder();
type Line = Record<string, unknown> & { type: string };

/** A lean IM connection for load: lines out in batches, every line in to a callback. */
class LoadConn {
  readonly conn: Deno.TcpConn;
  #onLine: (line: Line) => void;
  readonly done: Promise<void>;
  #waiters = new Map<unknown, (line: Line) => void>();

  private constructor(conn: Deno.TcpConn, onLine: (line: Line) => void) {
    this.conn = conn;
    this.#onLine = onLine;
    this.done = this.#read();
  }

  static async open(port: number, onLine: (line: Line) => void = () => {}): Promise<LoadConn> {
    return new LoadConn(await Deno.connect({ hostname: "127.0.0.1", port }), onLine);
  }

  set onLine(fn: (line: Line) => void) {
    this.#onLine = fn;
  }

  send(lines: string[]): Promise<void> {
    return writeAll(this.conn, encoder.encode(lines.join("\n") + "\n"));
  }

  /** Sends one request with `id` and waits for its response. */
  async call(body: Record<string, unknown>): Promise<Line> {
    const reply = new Promise<Line>((resolve) => this.#waiters.set(body.id, resolve));
    await this.send([JSON.stringify(body)]);
    return reply;
  }

  async #read(): Promise<void> {
    const reader = new LineReader(this.conn, { maxLineBytes: 1 << 24 });
    try {
      for (let batch = await reader.readLines(); batch; batch = await reader.readLines()) {
        for (const text of batch) {
          const line = JSON.parse(text) as Line;
          const waiter = line.id === undefined ? undefined : this.#waiters.get(line.id);
          if (waiter) {
            this.#waiters.delete(line.id);
            waiter(line);
          } else this.#onLine(line);
        }
      }
    } catch {
      // Closed under us at the end of a run.
    }
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function registerAndLogin(port: number, user: string): Promise<LoadConn> {
  const c = await LoadConn.open(port);
  const password = `${user}-password`;
  const reg = await c.call({ type: "register", id: "r", user, password });
  if (reg.type !== "registered") throw new Error(`register ${user}: ${JSON.stringify(reg)}`);
  const login = await c.call({ type: "login", id: "l", user, password });
  if (login.type !== "logged_in") throw new Error(`login ${user}: ${JSON.stringify(login)}`);
  return c;
}

/** 100 pairs: each sender pipelines `window` messages to its partner, `perPair` in all. */
async function privatePairs(port: number, pairs: number, perPair: number, window: number) {
  const senders: LoadConn[] = [];
  const receivers: LoadConn[] = [];
  for (let i = 0; i < pairs; i++) {
    senders.push(await registerAndLogin(port, `s${i}`));
    receivers.push(await registerAndLogin(port, `r${i}`));
  }
  const latencies: number[] = [];
  let received = 0;
  const start = performance.now();
  await Promise.all(senders.map((sender, i) =>
    new Promise<void>((resolve, reject) => {
      let sent = 0;
      let acked = 0;
      let got = 0;
      const to = `r${i}`;
      const sendSome = (n: number) => {
        const lines = [];
        for (let k = 0; k < n && sent < perPair; k++, sent++) {
          lines.push(
            `{"type":"send","to":"${to}","text":"${performance.now().toFixed(3)} message ${sent}"}`,
          );
        }
        if (lines.length > 0) sender.send(lines).catch(reject);
      };
      sender.onLine = (line) => {
        if (line.type === "sent") {
          acked++;
          sendSome(1);
        } else if (line.type === "error") reject(new Error(JSON.stringify(line)));
      };
      receivers[i].onLine = (line) => {
        if (line.type !== "message") return;
        latencies.push(performance.now() - Number(String(line.text).split(" ", 1)[0]));
        received++;
        if (++got === perPair) resolve();
      };
      void acked;
      sendSome(window);
    })
  ));
  const seconds = (performance.now() - start) / 1000;
  for (const c of [...senders, ...receivers]) c.close();
  latencies.sort((a, b) => a - b);
  return {
    msgs_per_s: Math.round(received / seconds),
    p50_ms: percentile(latencies, 0.5),
    p99_ms: percentile(latencies, 0.99),
  };
}

/** Offline: `users` offline users each get `each` messages stored, then log in and take them. */
async function offlineStore(port: number, users: number, each: number) {
  const sender = await registerAndLogin(port, "offline-sender");
  for (let u = 0; u < users; u++) {
    await sender.call({ type: "register", id: `o${u}`, user: `off${u}`, password: "offline-pw" });
  }
  let stored = 0;
  const total = users * each;
  const storeStart = performance.now();
  await new Promise<void>((resolve, reject) => {
    sender.onLine = (line) => {
      if (line.type === "sent" && line.status === "stored") {
        if (++stored === total) resolve();
      } else if (line.type === "error") reject(new Error(JSON.stringify(line)));
    };
    // Pipelined in chunks; the server answers in order.
    (async () => {
      for (let k = 0; k < each; k++) {
        const lines = [];
        for (let u = 0; u < users; u++) {
          lines.push(`{"type":"send","to":"off${u}","text":"stored message ${k}"}`);
        }
        await sender.send(lines);
      }
    })().catch(reject);
  });
  const storeSeconds = (performance.now() - storeStart) / 1000;
  sender.close();

  const deliverStart = performance.now();
  let delivered = 0;
  await Promise.all(Array.from({ length: users }, async (_, u) => {
    const c = await LoadConn.open(port);
    let got = 0;
    const all = new Promise<void>((resolve) => {
      c.onLine = (line) => {
        if (line.type === "message" && ++got === each) resolve();
      };
    });
    await c.call({ type: "login", id: "l", user: `off${u}`, password: "offline-pw" });
    await all;
    delivered += got;
    c.close();
  }));
  const deliverSeconds = (performance.now() - deliverStart) / 1000;
  return {
    stored_per_s: Math.round(total / storeSeconds),
    delivered_per_s: Math.round(delivered / deliverSeconds),
  };
}

/** Logins per second with the real PBKDF2 work factor, `conns` logging in at once. */
async function logins(port: number, conns: number, perConn: number) {
  const clients = await Promise.all(Array.from({ length: conns }, () => LoadConn.open(port)));
  await Promise.all(
    clients.map((c, i) =>
      c.call({ type: "register", id: "r", user: `login${i}`, password: "login-password" })
    ),
  );
  const start = performance.now();
  await Promise.all(clients.map(async (c, i) => {
    for (let k = 0; k < perConn; k++) {
      const reply = await c.call({
        type: "login",
        id: `l${k}`,
        user: `login${i}`,
        password: "login-password",
      });
      if (reply.type !== "logged_in") throw new Error(JSON.stringify(reply));
      await c.call({ type: "logout", id: `o${k}` });
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  for (const c of clients) c.close();
  return { logins_per_s: Number((conns * perConn / seconds).toFixed(1)) };
}

async function stop(server: ScriptProcess): Promise<void> {
  await server[Symbol.asyncDispose]();
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      pairs: { type: "string", default: "100" },
      messages: { type: "string", default: "1000" },
      window: { type: "string", default: "16" },
      "offline-users": { type: "string", default: "10" },
      "offline-each": { type: "string", default: "1000" },
    },
  });
  const pairs = Number(values.pairs);
  const perPair = Number(values.messages);
  const window = Number(values.window);
  const dir = await Deno.makeTempDir({ prefix: "im_bench_" });
  try {
    // Message runs hash with 1000 iterations, so that registering 200 users takes no minutes.
    const fast = [
      "127.0.0.1:0",
      "-q",
      "--db",
      `${dir}/im.kv`,
      "--max-offline",
      "100000",
      "--pbkdf2-iterations",
      "1000",
      "--insecure-test-hashing",
    ];
    let server = await startNetkit("im_server", fast);
    const im = await privatePairs(server.port, pairs, perPair, window);
    const offline = await offlineStore(
      server.port,
      Number(values["offline-users"]),
      Number(values["offline-each"]),
    );
    await stop(server);

    await using go = await startGoPeer("go-tcpecho");
    const echo = await runLoad("tcpload", [
      "-addr",
      `127.0.0.1:${go.port}`,
      "-c",
      String(pairs),
      "-n",
      String(perPair),
      "-window",
      String(window),
    ]);

    server = await startNetkit("im_server", ["127.0.0.1:0", "-q", "--db", ":memory:"]);
    const login = await logins(server.port, 4, 5);
    await stop(server);

    printTable("im_server: private messages, 100 online pairs (netkit) vs line echo (Go)", [
      {
        work: `${pairs} pairs x ${perPair} msgs, window ${window}`,
        netkit_msgs_per_s: im.msgs_per_s,
        netkit_p50_ms: im.p50_ms.toFixed(1),
        netkit_p99_ms: im.p99_ms.toFixed(1),
        go_echo_lines_per_s: echo.lines_per_s ?? "n/a",
        go_echo_p99_ms: echo.p99_ms ?? "n/a",
        ratio: ratio(im.msgs_per_s, echo.lines_per_s ?? 0),
      },
    ]);
    printTable("im_server: offline store (Deno KV on disk) and logins (PBKDF2, 600k)", [
      {
        offline_stored_per_s: offline.stored_per_s,
        offline_delivered_per_s: offline.delivered_per_s,
        logins_per_s: login.logins_per_s,
      },
    ]);
    return 0;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
