/**
 * ws bench: ws_echo_server against gorilla/websocket's echo server
 * (`go-wsecho`) and against the codec it did not choose (npm:ws's Receiver
 * and Sender over Deno.listen, bench/ws_npm_echo.ts), all in the same run:
 * `wsload -c 50 -n 4000 -window 32` messages per second, alternating, the
 * median of the rounds; then the memory of an idle WebSocket
 * (`idleconns -ws`) on fresh servers.
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

const ROUNDS = 3;
const IDLE_CONNS = 2000;

/** Starts bench/ws_npm_echo.ts on a free port. */
function startNpmEcho(): Promise<Peer> {
  const port = freePort();
  const script = new URL("./ws_npm_echo.ts", import.meta.url).pathname;
  return startOnPort(Deno.execPath(), ["run", "-A", script, String(port)], port);
}

async function main(): Promise<number> {
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
  return 0;
}

if (import.meta.main) Deno.exit(await main());
