/**
 * rpc bench: calls/s and latency of rpc_server under pipelined load (50
 * connections, each keeping 32 `Arith.Multiply` calls in flight), beside
 * the seeds' Go server (`jsonrpc.ServeConn`, tests/fixtures/go_rpc_server)
 * driven the same way in the same run; and in gob (Go's `rpc.Client`),
 * beside seed 002's own `rpc.ServeConn` server, built from the seed text. The load generator is
 * bench/rpcload (Go), built here with `go build`.
 *
 *     deno task bench rpc
 *     RPC_BENCH_ROUNDS=5 RPC_BENCH_CALLS=4000 deno task bench rpc
 *
 * @module
 */
import { buildGo, buildGoFixture, startGoServer } from "../tests/go_fixtures.ts";
import { startScript } from "../tests/helpers.ts";
import { buildSeed, missingSeeds, startSeedServer } from "../tests/seed_programs.ts";
import { median, parseFigures, printTable, ratio } from "./yardsticks.ts";

const CONNS = 50;
const WINDOW = 32;

async function load(
  rpcload: string,
  port: number,
  calls: number,
  dialect: string,
): Promise<Record<string, number>> {
  const { code, stdout, stderr } = await new Deno.Command(rpcload, {
    args: [
      `-addr=127.0.0.1:${port}`,
      `-c=${CONNS}`,
      `-n=${calls}`,
      `-window=${WINDOW}`,
      `-dialect=${dialect}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const figures = parseFigures(new TextDecoder().decode(stdout));
  if (code !== 0) {
    console.error(`rpcload exited ${code}: ${new TextDecoder().decode(stderr).slice(0, 500)}`);
    figures.failed = 1;
  }
  return figures;
}

async function main(): Promise<number> {
  const rounds = Number(Deno.env.get("RPC_BENCH_ROUNDS") ?? "3");
  const calls = Number(Deno.env.get("RPC_BENCH_CALLS") ?? "2000");
  await using rpcload = await buildGo(new URL("./rpcload", import.meta.url).pathname);
  await using goBinary = await buildGoFixture("go_rpc_server");
  await using netkit = await startScript("rpc_server", [
    "--host=127.0.0.1",
    "--port=0",
    "--http-port=off",
    "-q",
  ]);
  await using goServer = await startGoServer(goBinary);
  const targets = [
    { name: "netkit rpc_server (Go dialect)", port: netkit.port, dialect: "go" },
    { name: "netkit rpc_server (JSON-RPC 2.0)", port: netkit.port, dialect: "2.0" },
    { name: "Go jsonrpc.ServeConn", port: goServer.port, dialect: "go" },
  ];
  // Gob beside seed 002's server, when the seeds are here to build it from.
  await using gobBinary = missingSeeds() ? null : await buildSeed("002", "rpc.ServeConn(");
  await using gobServer = gobBinary ? await startSeedServer(gobBinary) : null;
  if (gobServer) {
    targets.push(
      { name: "netkit rpc_server (gob)", port: netkit.port, dialect: "gob" },
      { name: "Go rpc.ServeConn (gob, seed 002)", port: gobServer.port, dialect: "gob" },
    );
  }
  const results = new Map<string, Array<Record<string, number>>>();
  // Warm up both servers, then alternate, so that noise hits both alike.
  for (const t of targets) await load(rpcload.path, t.port, 200, t.dialect);
  for (let round = 0; round < rounds; round++) {
    for (const t of targets) {
      const figures = await load(rpcload.path, t.port, calls, t.dialect);
      results.set(t.name, [...results.get(t.name) ?? [], figures]);
    }
  }
  const summary = (name: string, key: string) =>
    median((results.get(name) ?? []).map((f) => f[key] ?? 0));
  const goRate = summary("Go jsonrpc.ServeConn", "calls_per_s");
  const gobRate = summary("Go rpc.ServeConn (gob, seed 002)", "calls_per_s");
  const rows = targets.map((t) => ({
    server: t.name,
    "calls/s": Math.round(summary(t.name, "calls_per_s")),
    "p50 ms": summary(t.name, "p50_ms").toFixed(2),
    "p99 ms": summary(t.name, "p99_ms").toFixed(2),
    "vs Go": ratio(summary(t.name, "calls_per_s"), t.dialect === "gob" ? gobRate : goRate),
    failed: (results.get(t.name) ?? []).filter((f) => f.failed).length,
  }));
  printTable(
    `RPC over TCP (gob rows against the gob Go server): ${CONNS} conns x ${calls} calls, ${WINDOW} in flight each ` +
      `(median of ${rounds})`,
    rows,
  );
  return rows.some((r) => r.failed > 0) ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
