/**
 * chat_bus bench: one chat room of 500 WebSocket members whose sender
 * sends 300 messages 2 ms apart; fan-out latency (send to the last
 * member) and deliveries/s, for
 *
 * - gorilla/websocket's chat hub (go-wschat), the yardstick;
 * - one ws_chat_server;
 * - two ws_chat_server instances joined through RabbitMQ (`--bus`), 250
 *   members on each, the sender on the first;
 * - one ws_chat_server with `--workers 2`.
 *
 * The driver is bench/go/chatfanout (wsload's broadcast mode over several
 * URLs), so every row is measured the same way.
 *
 *     deno task bench chat_bus
 *
 * @module
 */
import amqp from "amqplib";
import {
  buildBenchTool,
  median,
  printTable,
  ratio,
  runLoad,
  startGoPeer,
  startNetkit,
} from "./yardsticks.ts";
import type { ScriptProcess } from "../tests/helpers.ts";

const BROKER = "amqp://guest:guest@127.0.0.1:5672";
const MEMBERS = 500;
const MESSAGES = 300;
const ROUNDS = 3;
function fanout(urls: string[]): Promise<Record<string, number>> {
  const args = ["-urls", urls.join(","), "-c", String(MEMBERS), "-n", String(MESSAGES)];
  return runLoad("chatfanout", [...args, "-settle", "1s"]);
}

const wsUrl = (port: number) => `ws://127.0.0.1:${port}/ws?name=m`;
const chatArgs = ["--host=127.0.0.1", "--port=0", "--tcp-port=off", "--rate=0", "-q"];

interface Setup {
  name: string;
  start: () => Promise<{ urls: string[] } & AsyncDisposable>;
}

async function stopAll(procs: ScriptProcess[]): Promise<void> {
  for (const p of procs) await p[Symbol.asyncDispose]();
}

async function deleteExchange(name: string): Promise<void> {
  const conn = await amqp.connect(BROKER);
  try {
    await (await conn.createChannel()).deleteExchange(name);
  } finally {
    await conn.close();
  }
}

const setups: Setup[] = [
  {
    name: "go-wschat (gorilla hub)",
    async start() {
      const peer = await startGoPeer("go-wschat");
      return { urls: [wsUrl(peer.port)], [Symbol.asyncDispose]: () => peer[Symbol.asyncDispose]() };
    },
  },
  {
    name: "ws_chat_server, one instance",
    async start() {
      const p = await startNetkit("ws_chat_server", chatArgs);
      return { urls: [wsUrl(p.port)], [Symbol.asyncDispose]: () => stopAll([p]) };
    },
  },
  {
    name: "ws_chat_server x2 via RabbitMQ",
    async start() {
      const exchange = `netkit.bench.${crypto.randomUUID()}`;
      const bus = [`--bus=${BROKER}`, `--bus-exchange=${exchange}`];
      const a = await startNetkit("ws_chat_server", [...chatArgs, ...bus]);
      const b = await startNetkit("ws_chat_server", [...chatArgs, ...bus]);
      return {
        urls: [wsUrl(a.port), wsUrl(b.port)],
        async [Symbol.asyncDispose]() {
          await stopAll([a, b]);
          await deleteExchange(exchange);
        },
      };
    },
  },
  {
    name: "ws_chat_server --workers 2",
    async start() {
      const p = await startNetkit("ws_chat_server", [...chatArgs, "--workers=2"]);
      return { urls: [wsUrl(p.port)], [Symbol.asyncDispose]: () => stopAll([p]) };
    },
  },
];

async function main(): Promise<number> {
  await buildBenchTool("chatfanout");
  const runs = new Map<string, Array<Record<string, number>>>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const setup of setups) {
      await using server = await setup.start();
      const figures = await fanout(server.urls);
      runs.set(setup.name, [...(runs.get(setup.name) ?? []), figures]);
    }
  }
  const med = (name: string, key: string) => median(runs.get(name)!.map((f) => f[key] ?? NaN));
  const go = setups[0].name;
  printTable(
    `Chat fan-out: ${MEMBERS} members, ${MESSAGES} messages 2 ms apart (median of ${ROUNDS})`,
    setups.map((s) => ({
      setup: s.name,
      deliveries_per_s: Math.round(med(s.name, "deliveries_per_s")),
      fanout_p50_ms: med(s.name, "fanout_p50_ms").toFixed(1),
      fanout_p99_ms: med(s.name, "fanout_p99_ms").toFixed(1),
      missing: runs.get(s.name)!.reduce((sum, f) => sum + (f.missing ?? 0), 0),
      "p99 vs Go": ratio(med(s.name, "fanout_p99_ms"), med(go, "fanout_p99_ms")),
    })),
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main());
