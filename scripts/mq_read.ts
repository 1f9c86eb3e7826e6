#!/usr/bin/env -S deno run --allow-net --allow-read --allow-env=AMQP_URL
/**
 * mq_read: the RabbitMQ consumer of the book (readMQ.go). It declares the
 * queue, prints `Connected to the RabbitMQ server!` and then `Received:
 * <body>` for each message (in a pipe: the bodies alone, one per line). Unlike the book it acknowledges a message only
 * after its line was written out (manual acks, `--prefetch` window), so a
 * crash or Ctrl-C never loses one: unacknowledged messages go back to the
 * queue. It reconnects with backoff when the broker restarts and resumes
 * consuming; `--count N` exits after N messages.
 *
 *     deno task mq_read
 *     deno task mq_read -q jobs -c 10
 *     deno task mq_read -q audit -e amq.topic -r 'orders.#'
 *
 * @module
 */
import { AMQP_OPTIONS, amqpCa, bindingOption, resolveAmqpUrl } from "../lib/amqp/amqp.ts";
import { QueueConsumer } from "../lib/amqp/amqp_consumer.ts";
import { parseDurationOption, parseIntOption, runCommand, usage } from "../lib/cli/cli.ts";
import { writeAll } from "../lib/io/lines.ts";
import { plainOutput } from "../lib/io/print.ts";
import { Logger } from "../lib/cli/log.ts";
import { forTerminal } from "../lib/io/escape.ts";
import { abortOnSignals, whenAborted } from "../lib/cli/signals.ts";

const encoder = new TextEncoder();

const spec = {
  name: "mq_read",
  summary: "Prints the messages of a RabbitMQ queue, acknowledging each once printed (readMQ.go).",
  args: "",
  maxArgs: 0,
  options: {
    ...AMQP_OPTIONS,
    prefetch: {
      type: "string",
      arg: "N",
      default: "100",
      description: "most unacknowledged messages in flight",
    },
    count: { type: "string", short: "c", arg: "N", description: "exit after N messages" },
    quiet: { type: "boolean", description: "print no Received: lines (for load)" },
    raw: {
      type: "boolean",
      description: "only the bodies, one per line, even in a terminal",
    },
    book: {
      type: "boolean",
      description: "the book's lines (Received: body) even in a pipe",
    },
  },
  notes: `Runs until Ctrl-C (or --count N messages). When stdout is not a terminal (or
with --raw) it writes only the bodies, one per line (mq_read | jq); the book's
"RabbitMQ consumer" and "Connected to the RabbitMQ server!" go to stderr. In a
terminal (or with --book) each message prints as "Received: <body>". Each
message is acknowledged only after its line was written, so none is lost;
unacknowledged ones go back to the queue. The password of the URL is never
printed.

The short options are amqp-consume's: -u URL, -q QUEUE, -e EXCHANGE (bind the
queue to it), -r ROUTING_KEY, -c COUNT. --quiet has no short form.

Examples:
  mq_read
  mq_read -q jobs -c 10 --prefetch 500
  mq_read -q audit -e amq.topic -r 'orders.#'`,
} as const;

/** Reads the queue until Ctrl-C or `--count`; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values }) => {
    const url = usage(() => resolveAmqpUrl(values.url, Deno.env.get("AMQP_URL")));
    const ca = amqpCa(url, values.ca);
    const count = values.count === undefined
      ? Infinity
      : parseIntOption(values.count, "count", { min: 1 });
    const prefetch = parseIntOption(values.prefetch, "prefetch", { min: 1, max: 65535 });
    const connectTimeoutMs = parseDurationOption(values["connect-timeout"], "connect-timeout");
    const log = new Logger();
    const out = (text: string) => writeAll(Deno.stdout, encoder.encode(text));
    // In a pipe stdout carries the bodies alone; the book's lines are diagnostics there.
    const plain = values.raw || (!values.book && plainOutput(false));
    const say = plain ? (text: string) => writeAll(Deno.stderr, encoder.encode(text)) : out;
    const prefix = plain ? "" : "Received: ";
    let received = 0;
    let started = 0;
    const controller = new AbortController();
    using _signals = abortOnSignals(controller);

    await say("RabbitMQ consumer\n");
    await using consumer = await QueueConsumer.open(url, {
      queue: values.queue,
      durable: values.durable,
      bind: usage(() => bindingOption(values)),
      prefetch,
      start: false, // Print the connected line before any Received: line.
      connectTimeoutMs,
      ca,
      signal: controller.signal,
      logger: log,
      onReady: (_queue, connects) => {
        if (connects === 1) started = performance.now();
      },
      handle: async (batch, settle) => {
        const take = Math.min(batch.length, count - received);
        if (!values.quiet) {
          let text = "";
          // Bodies are data: exact when piped, escaped on a terminal.
          for (let i = 0; i < take; i++) {
            text += `${prefix}${forTerminal(String(batch[i].content))}\n`;
          }
          await out(text);
        }
        settle.ack(batch[take - 1]);
        received += take;
        return received < count;
      },
    });
    await say("Connected to the RabbitMQ server!\n");
    await consumer.resume();
    await Promise.race([consumer.finished, whenAborted(controller.signal)]);
    await consumer.stop();
    await consumer.finished;
    if (count !== Infinity) {
      const secs = (performance.now() - started) / 1000;
      log.info(
        `Received ${received} messages in ${secs.toFixed(3)} s (${
          Math.round(received / secs)
        } msgs/s)`,
      );
    }
    return 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
