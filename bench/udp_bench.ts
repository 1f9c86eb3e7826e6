/**
 * udp bench: `udpload -c 4 -n 20000` (4 sockets, 20,000 datagrams each,
 * 8 in flight per socket) against udp_random_server and the Go peer
 * go-udpecho in the same run, alternating, and prints replies/s, loss,
 * the ratio netkit/Go, and each server's CPU time per reply (user and
 * system, from /proc/PID/stat): CPU per reply moves far less with the
 * machine's other load than replies/s do, and shows where the gap is.
 *
 *     deno task bench udp
 *     deno run -A bench/udp_bench.ts --rounds 7
 *
 * @module
 */
import { parseArgs } from "node:util";
import { median, printTable, ratio, runLoad, startNetkit, yardsticks } from "./yardsticks.ts";
import { deadline } from "../lib/io/deadline.ts";

/** A free UDP port on 127.0.0.1, for the Go peer that cannot take port 0. */
function freeUdpPort(): number {
  const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (conn.addr as Deno.NetAddr).port;
  conn.close();
  return port;
}

/** Linux's USER_HZ: /proc/PID/stat counts CPU time in 1/100 s. */
const CLOCK_TICKS_PER_S = 100;

/** CPU time a process has used so far, user and system, in µs (0 where /proc is missing). */
async function cpuMicros(pid: number): Promise<{ user: number; system: number }> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const toMicros = (ticks: string) => Number(ticks) * 1e6 / CLOCK_TICKS_PER_S;
    return { user: toMicros(fields[11]), system: toMicros(fields[12]) };
  } catch {
    return { user: 0, system: 0 };
  }
}

/** Runs udpload against a server and adds the server's CPU time to the figures. */
async function measure(port: number, pid: number, load: string[]): Promise<Record<string, number>> {
  const before = await cpuMicros(pid);
  const figures = await runLoad("udpload", ["-addr", `127.0.0.1:${port}`, ...load]);
  const after = await cpuMicros(pid);
  figures.user_us = after.user - before.user;
  figures.system_us = after.system - before.system;
  return figures;
}

/** Sends probes until something answers on 127.0.0.1:port. */
async function waitForUdp(port: number, timeoutMs = 10_000): Promise<void> {
  const conn = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const until = Date.now() + timeoutMs;
  try {
    const answered = conn.receive().then(() => true, () => false);
    while (Date.now() < until) {
      await conn.send(new TextEncoder().encode("probe"), {
        transport: "udp",
        hostname: "127.0.0.1",
        port,
      });
      const ok = await deadline(answered, 100, "").catch(() => false);
      if (ok) return;
    }
    throw new Error(`Nothing answers UDP on 127.0.0.1:${port}`);
  } finally {
    conn.close();
  }
}

/** Starts go-udpecho on a free port and waits until it answers. */
async function startGoUdpEcho(): Promise<{ port: number; pid: number } & AsyncDisposable> {
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
    pid: child.pid,
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
    runs.netkit.push(await measure(ours.port, ours.child.pid, load));
    runs.go.push(await measure(go.port, go.pid, load));
  }
  const sum = (figures: Array<Record<string, number>>, key: string) =>
    figures.reduce((total, f) => total + (f[key] ?? 0), 0);
  const perReply = (figures: Array<Record<string, number>>, key: string) =>
    (sum(figures, key) / Math.max(1, sum(figures, "replies"))).toFixed(2);
  const row = (name: string, figures: Array<Record<string, number>>) => ({
    server: name,
    "replies/s (median)": Math.round(median(figures.map((f) => f.replies_per_s ?? 0))),
    "lost (total)": sum(figures, "lost"),
    "p50 ms": median(figures.map((f) => f.p50_ms ?? 0)).toFixed(3),
    "p99 ms": median(figures.map((f) => f.p99_ms ?? 0)).toFixed(3),
    "user µs/reply": perReply(figures, "user_us"),
    "sys µs/reply": perReply(figures, "system_us"),
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
