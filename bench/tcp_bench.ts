/**
 * tcp bench: netkit's TCP line servers against the Go peer, in the same
 * run, with ../shared/bench's yardsticks:
 *
 * - `tcpload -c 50 -n 20000 -window 32` against tcp_echo_server and
 *   `go-tcpecho` (echo mode, every byte checked), alternating, repeated;
 * - `tcpload -mode reply` against conc_tcp_server and `go-tcpecho -mode
 *   count` (`Client number: N` replies);
 * - the echo again over TLS: bench/go/tlsload (tcpload over crypto/tls)
 *   against `tcp_echo_server --cert/--key` and `tlsload -serve`, Go's
 *   crypto/tls echo, with a CA and certificate made by openssl for the run;
 * - `idleconns -c 5000`: resident memory per idle connection of a fresh
 *   tcp_echo_server, conc_tcp_server and go-tcpecho.
 *
 * Prints the medians and the ratio netkit/Go. Figures, not verdicts: the
 * machine is shared and noisy, so compare ratios from one run.
 *
 *     deno task bench tcp
 *     deno run -A bench/tcp_bench.ts --rounds 5 --conns 50 --lines 20000 --idle 5000
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  buildBenchTool,
  median,
  printTable,
  ratio,
  runLoad,
  startGoPeer,
  startNetkit,
} from "./yardsticks.ts";
import { makeCerts } from "../tests/tls_certs.ts";

interface Settings {
  rounds: number;
  conns: number;
  lines: number;
  window: number;
  idle: number;
}

/** A server under load: where it listens and its process id. */
interface Target extends AsyncDisposable {
  port: number;
  pid: number;
}

async function netkit(script: string, extra: string[] = []): Promise<Target> {
  const proc = await startNetkit(script, [
    "--quiet",
    "--max-conns",
    "20000",
    ...extra,
    "127.0.0.1:0",
  ]);
  return {
    port: proc.port,
    pid: proc.child.pid,
    [Symbol.asyncDispose]: () => proc[Symbol.asyncDispose](),
  };
}

function goPeer(mode: "echo" | "count"): Promise<Target> {
  return startGoPeer("go-tcpecho", ["-mode", mode]);
}

/** The load generator: tcpload, or tlsload with the CA to trust. */
interface Load {
  tool: "tcpload" | "tlsload";
  extra: string[];
}
const TCPLOAD: Load = { tool: "tcpload", extra: [] };

/** Runs the load against both servers, alternating, and returns a table row. */
async function throughput(
  name: string,
  ours: Target,
  theirs: Target,
  mode: "echo" | "reply",
  s: Settings,
  load: Load = TCPLOAD,
): Promise<Record<string, string | number>> {
  const args = (port: number) => [
    "-addr",
    `127.0.0.1:${port}`,
    "-c",
    String(s.conns),
    "-n",
    String(s.lines),
    "-window",
    String(s.window),
    ...(load.tool === "tcpload" ? ["-mode", mode] : []),
    ...load.extra,
  ];
  const mine: Record<string, number>[] = [];
  const go: Record<string, number>[] = [];
  for (let round = 0; round < s.rounds; round++) {
    // Alternate who goes first, so a noisy moment hurts both alike.
    const pair = round % 2 === 0
      ? [[mine, ours], [go, theirs]] as const
      : [[go, theirs], [mine, ours]] as const;
    for (const [results, target] of pair) results.push(await runLoad(load.tool, args(target.port)));
  }
  const rate = (rs: Record<string, number>[]) => median(rs.map((r) => r.lines_per_s ?? 0));
  const p99 = (rs: Record<string, number>[]) => median(rs.map((r) => r.p99_ms ?? 0));
  const failed = [...mine, ...go].some((r) => r.failed);
  return {
    work: name,
    "netkit lines/s": Math.round(rate(mine)),
    "Go lines/s": Math.round(rate(go)),
    ratio: ratio(rate(mine), rate(go)) + (failed ? " (errors!)" : ""),
    "netkit p99 ms": p99(mine).toFixed(2),
    "Go p99 ms": p99(go).toFixed(2),
    rounds: s.rounds,
  };
}

/** Memory per idle connection of a fresh server, in KB. */
async function idleCost(start: () => Promise<Target>, conns: number): Promise<number> {
  await using target = await start();
  const figures = await runLoad("idleconns", [
    "-addr",
    `127.0.0.1:${target.port}`,
    "-pid",
    String(target.pid),
    "-c",
    String(conns),
  ]);
  return figures.failed ? NaN : figures.kb_per_conn;
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      rounds: { type: "string", default: "3" },
      conns: { type: "string", default: "50" },
      lines: { type: "string", default: "20000" },
      window: { type: "string", default: "32" },
      idle: { type: "string", default: "5000" },
    },
  });
  const s: Settings = {
    rounds: Number(values.rounds),
    conns: Number(values.conns),
    lines: Number(values.lines),
    window: Number(values.window),
    idle: Number(values.idle),
  };
  console.log(
    `tcpload -c ${s.conns} -n ${s.lines} -window ${s.window}, ${s.rounds} rounds each, alternating`,
  );
  const rows = [];
  {
    await using ours = await netkit("tcp_echo_server");
    await using theirs = await goPeer("echo");
    rows.push(await throughput("echo: tcp_echo_server vs go-tcpecho", ours, theirs, "echo", s));
  }
  {
    // Two worker threads on a 2-core machine: the load generator needs a core too.
    await using ours = await netkit("tcp_echo_server", ["--workers", "2"]);
    await using theirs = await goPeer("echo");
    rows.push(
      await throughput("echo: tcp_echo_server --workers 2 vs go-tcpecho", ours, theirs, "echo", s),
    );
  }
  {
    await buildBenchTool("tlsload");
    await using certs = await makeCerts();
    await using ours = await netkit("tcp_echo_server", ["--cert", certs.cert, "--key", certs.key]);
    await using theirs = await startGoPeer("tlsload", [
      "-serve",
      "-cert",
      certs.cert,
      "-key",
      certs.key,
    ]);
    rows.push(
      await throughput(
        "echo over TLS: tcp_echo_server --cert vs Go crypto/tls",
        ours,
        theirs,
        "echo",
        s,
        {
          tool: "tlsload",
          extra: ["-ca", certs.ca],
        },
      ),
    );
  }
  {
    await using ours = await netkit("conc_tcp_server");
    await using theirs = await goPeer("count");
    rows.push(
      await throughput(
        "reply: conc_tcp_server vs go-tcpecho -mode count",
        ours,
        theirs,
        "reply",
        s,
      ),
    );
  }
  printTable("TCP throughput (median lines/s)", rows);

  if (s.idle <= 0) return rows.some((r) => String(r.ratio).includes("errors")) ? 1 : 0;
  const go = await idleCost(() => goPeer("echo"), s.idle);
  const memory = [];
  for (const script of ["tcp_echo_server", "conc_tcp_server"]) {
    const kb = await idleCost(() => netkit(script), s.idle);
    memory.push({
      server: script,
      "netkit KB/conn": kb.toFixed(2),
      "go-tcpecho KB/conn": go.toFixed(2),
      ratio: ratio(kb, go),
    });
  }
  printTable(`Idle connections (idleconns -c ${s.idle}, resident memory growth)`, memory);
  const failed = rows.some((r) => String(r.ratio).includes("errors")) ||
    memory.some((m) => m["netkit KB/conn"] === "NaN");
  return failed ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
