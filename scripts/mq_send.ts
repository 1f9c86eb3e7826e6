#!/usr/bin/env -S deno run --allow-net --allow-read --allow-env=AMQP_URL
/**
 * mq_send: the RabbitMQ producer of the book (sendMQ.go), with the flags
 * of amqp-publish. By default it declares the queue, prints it as Go
 * prints an amqp.Queue (`Queue: {Go 0 0}`), and publishes `Writing to
 * RabbitMQ!`, a `--message`, each stdin line (`--lines`) or `--count N`
 * numbered messages to it; with `-e EXCHANGE -r KEY` it publishes through
 * that exchange instead. Unlike the book it loses nothing silently: every
 * message is published with publisher confirms and reported only once the
 * broker confirmed it; when the connection drops it reconnects with
 * backoff and republishes whatever was not confirmed; a nack, a message
 * no queue takes, or a broker not reachable within `--connect-timeout` is
 * exit 1.
 *
 *     deno task mq_send
 *     deno task mq_send -q jobs --durable -p -m "hello"
 *     deno task mq_send -e amq.topic -r orders.new -H 'x-id: 7' -C application/json -m '{}'
 *     printf 'a\nb\n' | deno task mq_send --lines
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { Channel, ChannelModel, ConfirmChannel, Replies } from "amqplib";
import {
  AMQP_OPTIONS,
  amqpCa,
  AmqpFatalError,
  AmqpLink,
  type BackoffOptions,
  DEFAULT_CONNECT_TIMEOUT,
  formatQueue,
  resolveAmqpUrl,
  untilWritten,
} from "../lib/amqp/amqp.ts";
import {
  parseDurationOption,
  parseIntOption,
  runCommand,
  usage,
  UsageError,
} from "../lib/cli/cli.ts";
import { LineReader, LineTooLongError, writeAll } from "../lib/io/lines.ts";
import { PublishBatch } from "../lib/amqp/amqp_publish.ts";
import { parseHeaderPairs } from "../lib/cli/headers.ts";
import { Logger } from "../lib/cli/log.ts";
import { abortOnSignals } from "../lib/cli/signals.ts";

/** The book's message. */
export const DEFAULT_MESSAGE = "Writing to RabbitMQ!";
const encoder = new TextEncoder();
/** Chunks (batches or amqplib frames) queued on the channel before send() waits for drain. */
const CHANNEL_HIGH_WATER_MARK = 64;
/** How long to keep reconnecting after the connection dropped mid-run. */
const RECONNECT_TIMEOUT_MS = 30_000;

/** Options for {@link Producer.open}. */
export interface ProducerOptions {
  /** The queue to declare (and, without `exchange`, publish to); null none. Default `Go`. */
  queue?: string | null;
  /** Publish through this existing exchange. Default "" (the default exchange). */
  exchange?: string;
  /** Routing key. Default the queue's name. */
  routingKey?: string;
  /** Message headers. Default none. */
  headers?: Record<string, string>;
  /** Content type of every message. Default `text/plain`. */
  contentType?: string;
  /** Declare the queue durable. Default false (as the book). */
  durable?: boolean;
  /** Mark messages persistent (delivery mode 2). Default false. */
  persistent?: boolean;
  /** Use publisher confirms. Default true; without them nothing can be republished. */
  confirm?: boolean;
  /** Most messages published and not yet confirmed. Default 10000. */
  maxInFlight?: number;
  /** How long to try reaching the broker at start, in ms. Default 5000. */
  connectTimeoutMs?: number;
  /** How long to keep reconnecting after a drop, in ms. Default 30000. */
  reconnectTimeoutMs?: number;
  /** Reconnect delays. Default 100 ms doubling up to 5 s. */
  backoff?: BackoffOptions;
  /** CA certificates (PEM) for an amqps:// broker, beyond the system's. Default none. */
  ca?: string[];
  /** Aborting it while connecting stops trying. */
  signal?: AbortSignal;
  /** Called once per confirmed message, in confirm order. */
  onConfirm?: () => void;
  /** Where diagnostics go. */
  logger: Logger;
}

/**
 * Publishes to one queue and keeps every message until the broker has
 * confirmed it, so a dropped connection costs a republish, never a loss.
 */
export class Producer implements AsyncDisposable {
  /** The queue as declared on the first connect (name, messages, consumers), if one was. */
  queue: Replies.AssertQueue | null = null;
  /** Messages the broker has confirmed (or, without confirms, handed to it). */
  confirmed = 0;
  /** Messages republished after a reconnect. */
  republished = 0;
  /** When {@link flush} saw every message handed to the socket (before any confirm). */
  writtenAt = 0;
  #link!: AmqpLink;
  #queue: string | null;
  #exchange: string;
  #routingKey: string;
  #confirm: boolean;
  #maxInFlight: number;
  #props: {
    contentType: string;
    persistent: boolean;
    mandatory: true;
    headers?: Record<string, string>;
  };
  #onConfirm?: () => void;
  #log: Logger;
  #channel: Channel | ConfirmChannel | null = null;
  #batch: PublishBatch | null = null;
  #flushScheduled = false;
  #pending = new Map<number, Buffer>(); // unconfirmed, in publish order
  #nextId = 0;
  #failure: Error | null = null;
  #waiters: Array<() => void> = [];

  private constructor(options: ProducerOptions) {
    this.#queue = options.queue === undefined ? "Go" : options.queue;
    this.#exchange = options.exchange ?? "";
    this.#routingKey = options.routingKey ?? this.#queue ?? "";
    this.#confirm = options.confirm ?? true;
    this.#maxInFlight = options.maxInFlight ?? 10_000;
    // mandatory: a message no queue takes (queue deleted, no binding for the key) comes back.
    this.#props = {
      contentType: options.contentType ?? "text/plain",
      persistent: options.persistent ?? false,
      mandatory: true,
    };
    if (options.headers && Object.keys(options.headers).length > 0) {
      this.#props.headers = options.headers;
    }
    this.#onConfirm = options.onConfirm;
    this.#log = options.logger;
  }

  /** Connects, declares the queue and returns a producer ready to send. */
  static async open(url: string, options: ProducerOptions): Promise<Producer> {
    const producer = new Producer(options);
    const durable = options.durable ?? false;
    producer.#link = await AmqpLink.open(url, {
      logger: options.logger,
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      reconnectTimeoutMs: options.reconnectTimeoutMs ?? RECONNECT_TIMEOUT_MS,
      backoff: options.backoff,
      ca: options.ca,
      signal: options.signal,
      setup: async (model, connects) => {
        const queue = await producer.#setup(model, durable);
        if (connects === 1) producer.queue = queue;
      },
      onDisconnect: () => producer.#lost(),
    });
    producer.#link.failed.catch((error) => producer.#fail(error));
    return producer;
  }

  /** Messages published and not yet confirmed. */
  get inFlight(): number {
    return this.#pending.size;
  }

  async #setup(model: ChannelModel, durable: boolean): Promise<Replies.AssertQueue | null> {
    // A short write queue, counted in chunks: batches are big, so waiting for drain bounds memory.
    const options = { highWaterMark: CHANNEL_HIGH_WATER_MARK };
    const channel = this.#confirm
      ? await model.createConfirmChannel(options)
      : await model.createChannel(options);
    channel.on("error", (error: Error) => {
      this.#fail(new AmqpFatalError(`The broker closed the channel: ${error.message}`));
    });
    channel.on("return", () => {
      this.#fail(
        new AmqpFatalError(
          this.#exchange === ""
            ? `Queue "${this.#routingKey}" is gone: a message came back unrouted`
            : `Exchange "${this.#exchange}" routed a message with key "${this.#routingKey}" ` +
              `to no queue: it came back`,
        ),
      );
    });
    if (this.#exchange !== "") await channel.checkExchange(this.#exchange);
    const queue = this.#queue === null ? null : await channel.assertQueue(this.#queue, { durable });
    if (this.#exchange !== "" && this.#queue !== null) {
      await channel.bindQueue(this.#queue, this.#exchange, this.#routingKey);
    }
    this.#channel = channel;
    // The batch writes plain publishes to the default exchange; the rest goes through amqplib.
    this.#batch = this.#exchange === "" && !this.#props.headers
      ? PublishBatch.for(channel, this.#routingKey, this.#props, this.#confirm)
      : null;
    if (this.#pending.size > 0) {
      this.#log.info(`Republishing ${this.#pending.size} unconfirmed messages`);
      this.republished += this.#pending.size;
      for (const [id, body] of this.#pending) this.#publish(channel, id, body);
      this.#flushBatch();
    }
    this.#wake();
    return queue;
  }

  /** Publishes one message: into the batch if there is one, else through amqplib. */
  #publish(channel: Channel | ConfirmChannel, id: number, body: Buffer): boolean {
    const onConfirm = this.#confirm ? (error: Error | null) => this.#settle(id, error) : undefined;
    const batch = this.#batch;
    if (batch !== null) {
      batch.add(body, onConfirm);
      if (batch.full) return this.#flushBatch();
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        queueMicrotask(() => {
          this.#flushScheduled = false;
          this.#flushBatch();
        });
      }
      return true;
    }
    const [exchange, key] = [this.#exchange, this.#routingKey];
    if (!this.#confirm) return channel.publish(exchange, key, body, this.#props);
    return (channel as ConfirmChannel).publish(exchange, key, body, this.#props, onConfirm);
  }

  /** Writes the batch to the channel; false asks the caller to wait for drain. */
  #flushBatch(): boolean {
    try {
      return this.#batch?.flush() ?? true;
    } catch {
      // The channel closed: with confirms the messages are still pending and get republished.
      return true;
    }
  }

  #settle(id: number, error: Error | null): void {
    if (error === null) {
      if (this.#pending.delete(id)) {
        this.confirmed++;
        this.#onConfirm?.();
      }
      if (this.#pending.size < this.#maxInFlight) this.#wake();
    } else if (error.message === "message nacked") {
      this.#fail(new AmqpFatalError(`The broker refused message ${id + 1} (nack)`));
    }
    // "channel closed": the message stays pending and is republished after reconnecting.
  }

  #lost(): void {
    this.#channel = null;
    this.#batch = null;
    if (!this.#confirm) {
      this.#fail(
        new AmqpFatalError("Connection lost without publisher confirms: messages may be lost"),
      );
    }
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  #wait(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /**
   * Publishes one message. Returns nothing when there is room for more
   * right away, or a promise to await before sending the next (window
   * full, socket busy, or reconnecting). Throws once the producer failed.
   */
  send(body: Buffer): Promise<void> | undefined {
    if (this.#failure) throw this.#failure;
    const id = this.#nextId++;
    if (this.#confirm) this.#pending.set(id, body);
    const channel = this.#channel;
    if (channel === null) return this.#room();
    const flowing = this.#publish(channel, id, body);
    if (!this.#confirm) this.confirmed++;
    if (!flowing) return this.#drained(channel);
    if (this.#pending.size >= this.#maxInFlight) return this.#room();
  }

  async #drained(channel: Channel): Promise<void> {
    this.#flushBatch();
    await new Promise<void>((resolve) => {
      const done = () => {
        channel.off("drain", done);
        channel.off("close", done);
        resolve();
      };
      channel.on("drain", done);
      channel.on("close", done);
    });
    if (this.#pending.size >= this.#maxInFlight) await this.#room();
  }

  async #room(): Promise<void> {
    this.#flushBatch();
    while (!this.#failure && (this.#channel === null || this.#pending.size >= this.#maxInFlight)) {
      await this.#wait();
    }
    if (this.#failure) throw this.#failure;
  }

  /** Resolves once every message sent so far is confirmed; throws if the producer failed. */
  async flush(): Promise<void> {
    this.#flushBatch();
    if (this.#channel) await untilWritten(this.#channel);
    this.writtenAt = performance.now();
    while (!this.#failure && this.#pending.size > 0) await this.#wait();
    if (this.#failure) throw this.#failure;
    if (!this.#confirm && this.#channel) {
      // Without confirms, the channel's close-ok is the broker's word that it got everything.
      const channel = this.#channel;
      this.#channel = null;
      await channel.close();
    }
  }

  /** Closes the channel and the connection. */
  async close(): Promise<void> {
    const channel = this.#channel;
    this.#channel = null;
    if (channel) await channel.close().catch(() => {});
    await this.#link?.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

const spec = {
  name: "mq_send",
  summary: "Publishes messages to RabbitMQ, each confirmed by the broker (sendMQ.go).",
  args: "",
  maxArgs: 0,
  options: {
    url: AMQP_OPTIONS.url,
    queue: {
      type: "string",
      short: "q",
      arg: "NAME",
      description: "queue to declare and publish to (default Go; with -e: declare and bind it)",
    },
    durable: AMQP_OPTIONS.durable,
    exchange: {
      type: "string",
      short: "e",
      arg: "NAME",
      description: "publish through this existing exchange instead of to the queue",
    },
    "routing-key": {
      type: "string",
      short: "r",
      arg: "KEY",
      description: "routing key (default the queue's name)",
    },
    header: {
      type: "string",
      short: "H",
      multiple: true,
      arg: "'NAME: VALUE'",
      description: "message header",
    },
    "content-type": {
      type: "string",
      short: "C",
      arg: "TYPE",
      default: "text/plain",
      description: "content type of the messages",
    },
    persistent: { type: "boolean", short: "p", description: "mark messages persistent" },
    message: {
      type: "string",
      short: "m",
      arg: "TEXT",
      default: DEFAULT_MESSAGE,
      description: "message to publish",
    },
    body: { type: "string", short: "b", arg: "TEXT", description: "the same as --message" },
    lines: {
      type: "boolean",
      short: "l",
      description: "publish each line of stdin as one message",
    },
    count: {
      type: "string",
      short: "c",
      arg: "N",
      description: "publish N numbered messages TEXT-1 ... TEXT-N (for load)",
    },
    "no-confirm": {
      type: "boolean",
      description: "skip publisher confirms (faster; a dropped connection is exit 1)",
    },
    "max-in-flight": {
      type: "string",
      arg: "N",
      default: "10000",
      description: "most unconfirmed messages at once",
    },
    "max-line": {
      type: "string",
      arg: "BYTES",
      default: "1048576",
      description: "longest stdin line with --lines",
    },
    "connect-timeout": AMQP_OPTIONS["connect-timeout"],
    ca: AMQP_OPTIONS.ca,
    quiet: { type: "boolean", description: "no per-message output with --lines" },
  },
  notes: `Prints "Message published to Queue!" once the broker confirmed each message
(with --count, one summary line). The password of the URL is never printed.
A message that no queue takes (no binding matches the key) is exit 1, never
dropped silently. An unreachable broker is retried for --connect-timeout
(default ${DEFAULT_CONNECT_TIMEOUT}); a connection that drops mid-run is retried for 30 s.

The short options are amqp-publish's: -u URL, -e EXCHANGE, -r ROUTING_KEY,
-H 'NAME: VALUE', -C CONTENT_TYPE, -p (persistent), -b BODY, -l (a message per line),
and amqp-consume's -q QUEUE and -c COUNT. --quiet has no short form.

Examples:
  mq_send
  mq_send -q jobs --durable -p -m "hello"
  mq_send -e amq.topic -r orders.new -C application/json -m '{"id":7}'
  printf 'one\\ntwo\\n' | mq_send -l
  mq_send -c 100000 -m msg`,
} as const;

/** Publishes what the options say; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values }) => {
    const url = usage(() => resolveAmqpUrl(values.url, Deno.env.get("AMQP_URL")));
    const ca = amqpCa(url, values.ca);
    const message = values.body ?? values.message;
    const exchange = values.exchange ?? "";
    // Without -e the routing key is a queue's name (amqp-publish -r), so -r alone names it.
    const queue = exchange === ""
      ? values.queue ?? values["routing-key"] ?? "Go"
      : values.queue ?? null;
    if (exchange === "" && values["routing-key"] !== undefined && values.queue !== undefined) {
      throw new UsageError("Give -q or -r without -e, not both: the key is the queue's name");
    }
    const headers = Object.fromEntries(usage(() => parseHeaderPairs(values.header)));
    const count = values.count === undefined ? null : parseIntOption(values.count, "count", {
      min: 1,
    });
    if (count !== null && values.lines) throw new UsageError("Use either --count or --lines");
    const maxInFlight = parseIntOption(values["max-in-flight"], "max-in-flight", { min: 1 });
    const maxLineBytes = parseIntOption(values["max-line"], "max-line", { min: 1 });
    const connectTimeoutMs = parseDurationOption(values["connect-timeout"], "connect-timeout");
    const log = new Logger();
    const out = (line: string) => writeAll(Deno.stdout, encoder.encode(line + "\n"));
    const perMessage = values.lines && !values.quiet;
    let confirmedLines = Promise.resolve();
    const controller = new AbortController();
    using _signals = abortOnSignals(controller);

    await out("RabbitMQ producer");
    await using producer = await Producer.open(url, {
      queue,
      exchange,
      routingKey: values["routing-key"],
      headers,
      contentType: values["content-type"],
      durable: values.durable,
      persistent: values.persistent,
      confirm: !values["no-confirm"],
      maxInFlight,
      connectTimeoutMs,
      ca,
      logger: log,
      signal: controller.signal,
      onConfirm: perMessage
        ? () => confirmedLines = confirmedLines.then(() => out("Message published to Queue!"))
        : undefined,
    });
    if (producer.queue) await out(`Queue: ${formatQueue(producer.queue)}`);
    const started = performance.now();
    let sent = 0;
    if (count !== null) {
      for (let i = 1; i <= count && !controller.signal.aborted; i++, sent++) {
        const waiting = producer.send(Buffer.from(`${message}-${i}`));
        if (waiting) await waiting;
      }
    } else if (values.lines) {
      const reader = new LineReader(Deno.stdin.readable, { maxLineBytes });
      try {
        for (let line = await reader.readLine(); line !== null; line = await reader.readLine()) {
          const waiting = producer.send(Buffer.from(line));
          sent++;
          if (waiting) await waiting;
          if (controller.signal.aborted) break;
        }
      } catch (error) {
        if (!(error instanceof LineTooLongError)) throw error;
        await producer.flush();
        await confirmedLines;
        throw new Error(`Line ${sent + 1} of stdin: ${error.message}; ${sent} published`);
      }
    } else {
      await producer.send(Buffer.from(message));
      sent = 1;
    }
    await producer.flush();
    await confirmedLines;
    // With confirms: until the last confirm. Without: until the last byte left, as Go measures.
    const ended = values["no-confirm"] ? producer.writtenAt : performance.now();
    const secs = (ended - started) / 1000;
    if (count !== null) {
      await out(`${producer.confirmed} messages published to Queue!`);
      log.info(
        `Published ${producer.confirmed} messages in ${secs.toFixed(3)} s ` +
          `(${Math.round(producer.confirmed / secs)} msgs/s, ${producer.republished} republished)`,
      );
    } else if (!values.lines) {
      await out("Message published to Queue!");
    }
    if (controller.signal.aborted) log.info(`Interrupted after ${sent} messages; all confirmed`);
    return 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
