/**
 * udp bench: `udpload -c 4 -n 20000` (4 sockets, 20,000 datagrams each,
 * 8 in flight per socket) against udp_random_server and the Go peer
 * go-udpecho in the same run, alternating, and prints replies/s, loss and
 * the ratio netkit/Go.
 *
 *     deno task bench udp
 *     deno run -A bench/udp_bench.ts --rounds 7
 *
 * @module
 */
import { parseArgs } from "node:util";
import { median, printTable, ratio, runLoad, startNetkit, yardsticks } from "./yardsticks.ts";

/** A free UDP port on 127.0.0.1, for the Go peer that cannot take port 0. */
function freeUdpPort(): number {
  const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (conn.addr as Deno.NetAddr).port;
  conn.close();
  return port;
}

/** Sends probes until something answers on 127.0.0.1:port. */
async function waitForUdp(port: number, timeoutMs = 10_000): Promise<void> {
  const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const deadline = Date.now() + timeoutMs;
  try {
    const answered = conn.receive().then(() => true, () => false);
    while (Date.now() < deadline) {
      await conn.send(new TextEncoder().encode("probe"), {
        transport: "udp",
        hostname: "127.0.0.1",
        port,
      });
      const ok = await Promise.race([answered, new Promise((r) => setTimeout(r, 100, false))]);
      if (ok) return;
    }
    throw new Error(`Nothing answers UDP on 127.0.0.1:${port}`);
  } finally {
    conn.close();
  }
}

/** Starts go-udpecho on a free port and waits until it answers. */
async function startGoUdpEcho(): Promise<{ port: number } & AsyncDisposable> {
  const bin = await yardsticks();
  const port = freeUdpPort();
  const child = new Deno.Command(`${bin}/go-udpecho`, {
    args: ["-addr", `127.0.0.1:${port}`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitForUdp(port);
  return {
    port,
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.status;
    },
  };
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      rounds: { type: "string", default: "5" },
      conns: { type: "string", short: "c", default: "4" },
      count: { type: "string", short: "n", default: "20000" },
    },
  });
  const load = ["-c", values.conns, "-n", values.count];
  await yardsticks();
  await using go = await startGoUdpEcho();
  await using ours = await startNetkit("udp_random_server", ["127.0.0.1:0", "--quiet"]);
  const runs: Record<"netkit" | "go", Array<Record<string, number>>> = { netkit: [], go: [] };
  // Warm-up, then alternate so both see the same background load.
  await runLoad("udpload", ["-addr", `127.0.0.1:${ours.port}`, ...load]);
  await runLoad("udpload", ["-addr", `127.0.0.1:${go.port}`, ...load]);
  for (let i = 0; i < Number(values.rounds); i++) {
    runs.netkit.push(await runLoad("udpload", ["-addr", `127.0.0.1:${ours.port}`, ...load]));
    runs.go.push(await runLoad("udpload", ["-addr", `127.0.0.1:${go.port}`, ...load]));
  }
  const row = (name: string, figures: Array<Record<string, number>>) => ({
    server: name,
    "replies/s (median)": Math.round(median(figures.map((f) => f.replies_per_s ?? 0))),
    "lost (total)": figures.reduce((sum, f) => sum + (f.lost ?? 0), 0),
    "p50 ms": median(figures.map((f) => f.p50_ms ?? 0)).toFixed(3),
    "p99 ms": median(figures.map((f) => f.p99_ms ?? 0)).toFixed(3),
  });
  const netkitRow = row("udp_random_server", runs.netkit);
  const goRow = row("go-udpecho", runs.go);
  printTable(`UDP: udpload ${load.join(" ")}, ${values.rounds} rounds`, [netkitRow, goRow]);
  console.log(
    `\nratio netkit/Go replies/s: ${
      ratio(netkitRow["replies/s (median)"], goRow["replies/s (median)"])
    } (target >= 0.8x with no loss)`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
