/**
 * mq bench: mq_send and mq_read against the Go amqp091 client
 * (../shared/bench `amqpload`), same broker, same run, alternating:
 * publishing 100,000 messages without and with publisher confirms, and
 * consuming 100,000 with manual acks (prefetch 500 on both sides). Each
 * side reports its own rate over the same span (connection open, from the
 * first publish or delivery to the last byte handed to the socket, the
 * last confirm, or the last ack), so process start-up is not counted.
 *
 *     deno task bench mq
 *     ROUNDS=5 COUNT=100000 deno task bench mq
 *
 * @module
 */
import amqp from "amqplib";
import { median, printTable, ratio, runLoad, yardsticks } from "./yardsticks.ts";
import { ROOT, taskArgs } from "../tests/helpers.ts";

const URL = Deno.env.get("AMQP_URL") ?? "amqp://guest:guest@127.0.0.1:5672/";
const COUNT = Number(Deno.env.get("COUNT") ?? 100_000);
const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 3);
const PREFETCH = 500; // amqpload's default

/** Runs a netkit script to completion; returns the msgs/s it logged. */
async function netkitRate(script: string, args: string[]): Promise<number> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [...taskArgs(script), "--url", URL, ...args],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(stderr);
  const match = /\((\d+) msgs\/s/.exec(text);
  if (code !== 0 || !match) {
    console.error(`${script} ${args.join(" ")} exited ${code}:\n${text.trim()}`);
    return 0;
  }
  return Number(match[1]);
}

async function goRate(args: string[]): Promise<number> {
  const figures = await runLoad("amqpload", ["-url", URL, "-n", String(COUNT), ...args]);
  return figures.failed ? 0 : figures.msgs_per_s ?? 0;
}

async function main(): Promise<number> {
  await yardsticks();
  const conn = await amqp.connect(URL);
  const channel = await conn.createChannel();
  const queue = `netkit.bench.${crypto.randomUUID()}`;
  await channel.assertQueue(queue, { durable: false });
  // Empty the queue and let the broker settle: a publisher without confirms may have left
  // messages in flight that land after a first purge and would slow whoever runs next.
  const purge = async () => {
    for (let purged = 1; purged > 0;) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      purged = (await channel.purgeQueue(queue)).messageCount;
    }
  };
  const fill = async () => {
    await purge();
    const figures = await runLoad("amqpload", ["-url", URL, "-q", queue, "-n", String(COUNT)]);
    if (figures.failed) throw new Error("amqpload could not fill the queue");
  };
  const n = String(COUNT);
  const work = {
    "publish, no confirms": {
      go: () => goRate(["-mode", "publish", "-q", queue]),
      netkit: () =>
        netkitRate("mq_send", ["--queue", queue, "--count", n, "--message", "msg", "--no-confirm"]),
      before: purge,
    },
    "publish, confirms": {
      go: () => goRate(["-mode", "publish", "-q", queue, "-confirm"]),
      netkit: () => netkitRate("mq_send", ["--queue", queue, "--count", n, "--message", "msg"]),
      before: purge,
    },
    "consume, manual acks": {
      go: () => goRate(["-mode", "consume", "-q", queue, "-prefetch", String(PREFETCH)]),
      netkit: () =>
        netkitRate("mq_read", ["--queue", queue, "--count", n, "--prefetch", String(PREFETCH)]),
      before: fill,
    },
  };
  const rows: Array<Record<string, string | number>> = [];
  try {
    for (const [name, w] of Object.entries(work)) {
      const go: number[] = [];
      const ours: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        // Alternate who goes first, so neither always meets a warmer broker.
        const order = round % 2 === 0 ? ["go", "netkit"] : ["netkit", "go"];
        for (const who of order) {
          await w.before();
          if (who === "go") go.push(await w.go());
          else ours.push(await w.netkit());
        }
      }
      const g = median(go);
      const o = median(ours);
      console.log(`${name}: go ${go.join(" ")} | netkit ${ours.join(" ")} msgs/s`);
      rows.push({
        work: `${name}, ${COUNT} msgs`,
        "Go amqp091 msgs/s": Math.round(g),
        "netkit msgs/s": Math.round(o),
        ratio: ratio(o, g),
      });
    }
  } finally {
    await channel.deleteQueue(queue).catch(() => {});
    await conn.close();
  }
  printTable(`RabbitMQ, median of ${ROUNDS} alternating rounds`, rows);
  return rows.some((r) => r["netkit msgs/s"] === 0) ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
