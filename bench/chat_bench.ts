/**
 * chat bench: the broadcast room under `wsload -mode broadcast -c 500 -n
 * 300` (500 listeners, one sender every 2 ms; every listener must get every
 * message), against ws_chat_server and gorilla's hub (`go-wschat`) in the
 * same run, alternating, 11 rounds; then the memory of 2000 idle members in
 * both, 3 times on fresh servers.
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

/** Rounds of the broadcast load; the machines are noisy, so the medians count. */
const ROUNDS = 11;
const CLIENTS = 500;
const MESSAGES = 300;
const IDLE_CONNS = 2000;
/** Fresh servers per side for the idle figure. */
const IDLE_RUNS = 3;

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
  const ratios: number[] = [];
  let missing = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    // Who goes first alternates, so neither always meets the other's leftovers.
    const sides = [["netkit", oursUrl], ["go-wschat", goUrl]] as const;
    const order = round % 2 === 1 ? sides : [sides[1], sides[0]];
    const figures: Record<string, number> = {};
    for (const [who, url] of order) {
      const f = await load(url);
      figures[who] = f.fanout_p99_ms;
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
    ratios.push(figures["netkit"] / figures["go-wschat"]);
  }
  printTable(`broadcast, ${CLIENTS} clients x ${MESSAGES} messages`, rows);
  console.log(
    `\nmedian fan-out p99: netkit ${median(p99.ours)} ms, go-wschat ${median(p99.go)} ms; ` +
      `median of the rounds' ratios ${median(ratios).toFixed(2)}x ` +
      `(rounds: ${
        ratios.map((r) => r.toFixed(2)).join(" ")
      }); netkit missing deliveries: ${missing}`,
  );

  const idle = async (url: string, pid: number) =>
    (await runLoad("idleconns", ["-ws", "-addr", url, "-pid", `${pid}`, "-c", `${IDLE_CONNS}`]))
      .kb_per_conn;
  const kb = { ours: [] as number[], go: [] as number[] };
  for (let run = 0; run < IDLE_RUNS; run++) {
    await using ours2 = await startNetkit("ws_chat_server", [
      "--host=127.0.0.1",
      "--port=0",
      "--tcp-port=off",
      "-q",
    ]);
    await using go2 = await startGoPeer("go-wschat");
    kb.ours.push(await idle(`ws://127.0.0.1:${ours2.port}/ws?name=idle`, ours2.child.pid));
    kb.go.push(await idle(`ws://127.0.0.1:${go2.port}/ws`, go2.pid));
  }
  printTable(
    `idle members (${IDLE_CONNS} WebSockets, fresh servers, ${IDLE_RUNS} runs)`,
    kb.ours.map((ours, i) => ({ run: i + 1, netkit_kb: ours, go_wschat_kb: kb.go[i] })),
  );
  console.log(
    `\nmedian idle member: netkit ${median(kb.ours)} KB, go-wschat ${median(kb.go)} KB, ` +
      `ratio ${ratio(median(kb.ours), median(kb.go))}`,
  );
  return missing > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
