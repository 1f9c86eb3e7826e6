/**
 * ws bench: ws_echo_server against gorilla/websocket's echo server
 * (`go-wsecho`) in the same run: `wsload -c 50 -n 4000 -window 32`
 * messages per second (alternating, best of the rounds), and the memory of
 * an idle WebSocket (`idleconns -ws`).
 *
 *     deno task bench ws
 *
 * @module
 */
import { median, printTable, ratio, runLoad, startGoPeer, startNetkit } from "./yardsticks.ts";

const ROUNDS = 3;
const IDLE_CONNS = 2000;

async function main(): Promise<number> {
  await using netkit = await startNetkit("ws_echo_server", ["127.0.0.1:0", "--quiet"]);
  await using go = await startGoPeer("go-wsecho");
  const targets = [
    { name: "netkit ws_echo_server", url: `ws://127.0.0.1:${netkit.port}/ws` },
    { name: "go-wsecho (gorilla)", url: `ws://127.0.0.1:${go.port}/ws` },
  ];
  const rates: number[][] = [[], []];
  const p99: number[][] = [[], []];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, t] of targets.entries()) {
      const f = await runLoad("wsload", ["-url", t.url, "-c", "50", "-n", "4000", "-window", "32"]);
      rates[i].push(f.msgs_per_s ?? 0);
      p99[i].push(f.p99_ms ?? 0);
    }
  }
  printTable("WebSocket echo, 50 conns x 4000 msgs, window 32", [
    ...targets.map((t, i) => ({
      server: t.name,
      "median msgs/s": Math.round(median(rates[i])),
      "best msgs/s": Math.round(Math.max(...rates[i])),
      "median p99 ms": median(p99[i]).toFixed(2),
    })),
    {
      server: "ratio netkit/go",
      "median msgs/s": ratio(median(rates[0]), median(rates[1])),
      "best msgs/s": ratio(Math.max(...rates[0]), Math.max(...rates[1])),
      "median p99 ms": "",
    },
  ]);

  const idle: number[] = [];
  for (const [i, t] of targets.entries()) {
    const pid = i === 0 ? netkit.child.pid : go.pid;
    const f = await runLoad("idleconns", [
      "-ws",
      "-addr",
      t.url,
      "-pid",
      String(pid),
      "-c",
      String(IDLE_CONNS),
    ]);
    idle.push(f.kb_per_conn ?? 0);
  }
  printTable(`Idle WebSocket memory, ${IDLE_CONNS} connections`, [
    ...targets.map((t, i) => ({ server: t.name, "KB per conn": idle[i].toFixed(1) })),
    { server: "ratio netkit/go", "KB per conn": ratio(idle[0], idle[1]) },
  ]);
  return 0;
}

if (import.meta.main) Deno.exit(await main());
