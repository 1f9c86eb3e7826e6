/**
 * ws bench: ws_echo_server against gorilla/websocket's echo server
 * (`go-wsecho`) and against the codec it did not choose (npm:ws's Receiver
 * and Sender over Deno.listen, bench/ws_npm_echo.ts), all in the same run:
 * `wsload -c 50 -n 4000 -window 32` messages per second, alternating, the
 * median of the rounds; then the memory of an idle WebSocket
 * (`idleconns -ws`) on fresh servers; then what ws_random_server's
 * memory does when 10 clients ask for 100000 integers each and never read,
 * twice, after one client that reads (issue 15's bound: it grows less than
 * 150 MB, and gives it back once they are dropped).
 *
 *     deno task bench ws
 *
 * @module
 */
import {
  freePort,
  median,
  type Peer,
  printTable,
  ratio,
  runLoad,
  startGoPeer,
  startNetkit,
  startOnPort,
} from "./yardsticks.ts";
import { readRandomStream } from "../tests/helpers.ts";
import { OP, RawWsClient } from "../tests/ws_raw.ts";

const ROUNDS = 3;
const IDLE_CONNS = 2000;
/** Clients of ws_random_server that ask for the most and never read. */
const GREEDY_CLIENTS = 10;
const GREEDY_COUNT = 100_000;

/** A process's resident memory in KB, from ps (reading /proc/PID needs --allow-all). */
async function rssKb(pid: number): Promise<number> {
  const out = await new Deno.Command("ps", { args: ["-o", "rss=", "-p", String(pid)] }).output();
  return Number(new TextDecoder().decode(out.stdout).trim());
}

/**
 * One burst of never-reading clients: the peak RSS while they hold the
 * server's writes (sampled every 100 ms until the server has dropped them
 * all for stalling), and the RSS 3 s after they are gone.
 */
async function greedyBurst(port: number, pid: number): Promise<{ peak: number; after: number }> {
  const clients = await Promise.all(
    Array.from({ length: GREEDY_CLIENTS }, () => RawWsClient.open(port)),
  );
  let peak = 0;
  try {
    for (const { client } of clients) await client.sendFrame(OP.text, String(GREEDY_COUNT));
    const started = Date.now();
    // The server drops a peer whose write stalls (5 s by default), closing TCP after a grace.
    while (Date.now() - started < 12_000) {
      peak = Math.max(peak, await rssKb(pid));
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    for (const { client } of clients) client.close();
  }
  await new Promise((r) => setTimeout(r, 3_000));
  return { peak, after: await rssKb(pid) };
}

/**
 * ws_random_server under never-reading clients: RSS fresh, after one
 * ordinary client (what any first use costs: compiled code, the binary's
 * pages, the allocator's pools), then two bursts, and 12 s later.
 */
async function greedyReaders(): Promise<Record<string, number>> {
  await using server = await startNetkit("ws_random_server", ["127.0.0.1:0", "--quiet"]);
  const pid = server.child.pid;
  await new Promise((r) => setTimeout(r, 1_000));
  const fresh = await rssKb(pid);
  if (await readRandomStream(server.port, GREEDY_COUNT) !== GREEDY_COUNT) {
    throw new Error("short stream");
  }
  await new Promise((r) => setTimeout(r, 1_000));
  const before = await rssKb(pid);
  const first = await greedyBurst(server.port, pid);
  const second = await greedyBurst(server.port, pid);
  // V8's memory reducer shrinks an idle heap some seconds later.
  await new Promise((r) => setTimeout(r, 12_000));
  const later = await rssKb(pid);
  return {
    fresh,
    before,
    peak: Math.max(first.peak, second.peak),
    after: first.after,
    after2: second.after,
    later,
  };
}

/** Starts bench/ws_npm_echo.ts on a free port. */
function startNpmEcho(): Promise<Peer> {
  const port = freePort();
  const script = new URL("./ws_npm_echo.ts", import.meta.url).pathname;
  return startOnPort(Deno.execPath(), ["run", "-A", script, String(port)], port);
}

async function main(args: string[]): Promise<number> {
  if (args[0] === "greedy") return printGreedy();
  await using netkit = await startNetkit("ws_echo_server", ["127.0.0.1:0", "--quiet"]);
  await using npm = await startNpmEcho();
  await using go = await startGoPeer("go-wsecho");
  const targets = [
    { name: "netkit ws_echo_server", url: `ws://127.0.0.1:${netkit.port}/ws` },
    { name: "npm:ws codec on Deno.listen", url: `ws://127.0.0.1:${npm.port}/ws` },
    { name: "go-wsecho (gorilla)", url: `ws://127.0.0.1:${go.port}/ws` },
  ];
  const rates: number[][] = targets.map(() => []);
  const p99: number[][] = targets.map(() => []);
  const roundRatios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Who goes first rotates, so that no one always meets the others' leftovers.
    const order = targets.map((_, i) => (i + round) % targets.length);
    for (const i of order) {
      const args = ["-url", targets[i].url, "-c", "50", "-n", "4000", "-window", "32"];
      const f = await runLoad("wsload", args);
      rates[i].push(f.msgs_per_s ?? 0);
      p99[i].push(f.p99_ms ?? 0);
    }
    roundRatios.push(rates[0][round] / rates[2][round]);
  }
  printTable("WebSocket echo, 50 conns x 4000 msgs, window 32", [
    ...targets.map((t, i) => ({
      server: t.name,
      "median msgs/s": Math.round(median(rates[i])),
      "rounds msgs/s": rates[i].map(Math.round).join(" "),
      "median p99 ms": median(p99[i]).toFixed(2),
      "ratio to go": ratio(median(rates[i]), median(rates[2])),
    })),
  ]);
  console.log(
    `\nnetkit/go per round: ${roundRatios.map((r) => r.toFixed(2)).join(" ")}; ` +
      `netkit/npm:ws codec: ${ratio(median(rates[0]), median(rates[1]))}`,
  );

  // Fresh servers: one that has just run the load has a grown heap and
  // shows idle sockets cheaper than they are.
  const idle: number[] = [];
  {
    await using fresh = await startNetkit("ws_echo_server", ["127.0.0.1:0", "--quiet"]);
    await using freshGo = await startGoPeer("go-wsecho");
    for (
      const [pid, port] of [[fresh.child.pid, fresh.port], [freshGo.pid, freshGo.port]] as const
    ) {
      const f = await runLoad("idleconns", [
        "-ws",
        "-addr",
        `ws://127.0.0.1:${port}/ws`,
        "-pid",
        String(pid),
        "-c",
        String(IDLE_CONNS),
      ]);
      idle.push(f.kb_per_conn ?? 0);
    }
  }
  printTable(`Idle WebSocket memory, ${IDLE_CONNS} connections, fresh servers`, [
    { server: targets[0].name, "KB per conn": idle[0].toFixed(1) },
    { server: targets[2].name, "KB per conn": idle[1].toFixed(1) },
    { server: "ratio netkit/go", "KB per conn": ratio(idle[0], idle[1]) },
  ]);
  return printGreedy();
}

async function printGreedy(): Promise<number> {
  const runs = [await greedyReaders(), await greedyReaders()];
  const mb = (kb: number) => (kb / 1024).toFixed(1);
  printTable(
    `ws_random_server, ${GREEDY_CLIENTS} never-reading clients asking ${GREEDY_COUNT}, twice`,
    runs.map((f, i) => ({
      run: i + 1,
      "fresh MB": mb(f.fresh),
      "after one reader MB": mb(f.before),
      "peak MB": mb(f.peak),
      "grew MB": mb(f.peak - f.before),
      "3 s after burst 1 MB": mb(f.after),
      "3 s after burst 2 MB": mb(f.after2),
      "15 s after MB": mb(f.later),
      "kept MB": mb(f.after2 - f.before),
    })),
  );
  return runs.every((f) => f.peak - f.before < 150 * 1024) ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
