/**
 * chat bench: the broadcast room under `wsload -mode broadcast -c 500 -n
 * 300` (500 listeners, one sender every 2 ms; every listener must get every
 * message), against ws_chat_server and gorilla's hub (`go-wschat`) in the
 * same run, alternating; then the memory of idle members in both.
 *
 *     deno task bench chat
 *
 * ws_chat_server runs with `--rate 0`: the load's sender sends 500
 * messages per second, far above the default per-member rate limit.
 *
 * @module
 */
import {
  median,
  printTable,
  ratio,
  runLoad,
  startGoPeer,
  startNetkit,
  yardsticks,
} from "./yardsticks.ts";

const ROUNDS = 3;
const CLIENTS = 500;
const MESSAGES = 300;
const IDLE_CONNS = 2000;

async function main(): Promise<number> {
  await yardsticks();
  await using ours = await startNetkit("ws_chat_server", [
    "--host=127.0.0.1",
    "--port=0",
    "--tcp-port=off",
    "--rate=0",
    "-q",
  ]);
  await using go = await startGoPeer("go-wschat");
  const oursUrl = `ws://127.0.0.1:${ours.port}/ws?name=bench`;
  const goUrl = `ws://127.0.0.1:${go.port}/ws`;
  const load = (url: string) =>
    runLoad("wsload", ["-mode", "broadcast", "-url", url, "-c", `${CLIENTS}`, "-n", `${MESSAGES}`]);

  const rows: Array<Record<string, string | number>> = [];
  const p99 = { ours: [] as number[], go: [] as number[] };
  let missing = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [who, url] of [["netkit", oursUrl], ["go-wschat", goUrl]] as const) {
      const f = await load(url);
      if (who === "netkit") {
        p99.ours.push(f.fanout_p99_ms);
        missing += f.missing ?? 0;
      } else p99.go.push(f.fanout_p99_ms);
      rows.push({
        round,
        server: who,
        deliveries_per_s: f.deliveries_per_s,
        missing: f.missing ?? "?",
        fanout_p50_ms: f.fanout_p50_ms,
        fanout_p99_ms: f.fanout_p99_ms,
      });
    }
  }
  printTable(`broadcast, ${CLIENTS} clients x ${MESSAGES} messages`, rows);
  const oursP99 = median(p99.ours);
  const goP99 = median(p99.go);
  console.log(
    `\nmedian fan-out p99: netkit ${oursP99} ms, go-wschat ${goP99} ms, ratio ${
      ratio(oursP99, goP99)
    }; netkit missing deliveries: ${missing}`,
  );

  const idle = async (url: string, pid: number) =>
    await runLoad("idleconns", ["-ws", "-addr", url, "-pid", `${pid}`, "-c", `${IDLE_CONNS}`]);
  await using ours2 = await startNetkit("ws_chat_server", [
    "--host=127.0.0.1",
    "--port=0",
    "--tcp-port=off",
    "-q",
  ]);
  await using go2 = await startGoPeer("go-wschat");
  const a = await idle(`ws://127.0.0.1:${ours2.port}/ws?name=idle`, ours2.child.pid);
  const b = await idle(`ws://127.0.0.1:${go2.port}/ws`, go2.pid);
  printTable(`idle members (${IDLE_CONNS} WebSockets)`, [
    { server: "netkit", kb_per_conn: a.kb_per_conn },
    { server: "go-wschat", kb_per_conn: b.kb_per_conn },
  ]);
  console.log(`\nidle memory ratio: ${ratio(a.kb_per_conn, b.kb_per_conn)}`);
  return missing > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
