#!/usr/bin/env -S deno run --allow-net --allow-read --allow-env=AMQP_URL
/**
 * mq_to_tcp: the book's exercise "a client that reads messages from
 * RabbitMQ and publishes them to a TCP server". It consumes a queue and
 * sends each message as one line to `--tcp HOST:PORT`, acknowledging a
 * message only once it was written to the socket (with `--await-reply`,
 * once the server answered it with a line). When the TCP server is down or
 * goes away, the unforwarded messages go back to the queue and the bridge
 * reconnects with backoff; nothing is lost. A message that cannot travel
 * as one line (a newline inside, or longer than `--max-line`) is rejected
 * without requeue, so the broker dead-letters it (if the queue has a
 * dead-letter exchange) instead of redelivering it forever.
 *
 *     deno task mq_to_tcp --tcp 127.0.0.1:1234
 *     deno task mq_to_tcp --tcp 127.0.0.1:1234 --await-reply --queue jobs
 *
 * @module
 */
import type { ConsumeMessage } from "amqplib";
import { type NetAddress, parseHostPort } from "../lib/net/addr.ts";
import {
  AMQP_OPTIONS,
  amqpCa,
  backoffDelay,
  bindingOption,
  resolveAmqpUrl,
} from "../lib/amqp/amqp.ts";
import { QueueConsumer, type Settle } from "../lib/amqp/amqp_consumer.ts";
import {
  parseDurationOption,
  parseIntOption,
  runCommand,
  usage,
  UsageError,
} from "../lib/cli/cli.ts";
import { LineReader, writeAll } from "../lib/io/lines.ts";
import { Logger } from "../lib/cli/log.ts";
import { logPayload } from "../lib/io/escape.ts";
import { abortOnSignals, whenAborted } from "../lib/cli/signals.ts";

const encoder = new TextEncoder();
const LF = 0x0a;
const CR = 0x0d;

/** The TCP server went away (or never answered); the batch goes back to the queue. */
class TcpDownError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TcpDownError";
  }
}

/** Options for {@link TcpTarget}. */
interface TcpTargetOptions {
  /** Longest reply line the server may send, in bytes. */
  maxLineBytes: number;
  /** How long to wait for replies with `--await-reply`, in ms. */
  replyTimeoutMs: number;
  logger: Logger;
}

/**
 * The TCP server the bridge forwards to: connects with backoff, sends
 * batches of lines, counts reply lines, and notices when the server goes.
 */
class TcpTarget {
  readonly address: NetAddress;
  #options: TcpTargetOptions;
  #conn: Deno.TcpConn | null = null;
  #down: Error | null = null;
  #replies: string[] = [];
  #wanted = 0; // reply lines the current send waits for; others are ignored
  #replyWaiter: (() => void) | null = null;
  #reading: Promise<void> = Promise.resolve();

  constructor(address: NetAddress, options: TcpTargetOptions) {
    this.address = address;
    this.#options = options;
  }

  get display(): string {
    const host = this.address.hostname.includes(":")
      ? `[${this.address.hostname}]`
      : this.address.hostname;
    return `tcp://${host}:${this.address.port}`;
  }

  /** Connects, retrying with exponential backoff until it works or `signal` aborts. */
  async connect(signal: AbortSignal): Promise<void> {
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        const conn = await Deno.connect(this.address);
        this.#conn = conn;
        this.#down = null;
        this.#reading = this.#read(conn);
        return;
      } catch (error) {
        const delay = backoffDelay(attempt);
        this.#options.logger.info(
          `TCP ${this.display}: ${(error as Error).message}; retrying in ${delay} ms`,
        );
        await sleep(delay, signal);
      }
    }
    throw signal.reason;
  }

  async #read(conn: Deno.TcpConn): Promise<void> {
    const reader = new LineReader(conn, { maxLineBytes: this.#options.maxLineBytes });
    try {
      for (let lines = await reader.readLines(); lines; lines = await reader.readLines()) {
        if (this.#replies.length < this.#wanted) {
          this.#replies.push(...lines.slice(0, this.#wanted - this.#replies.length));
          this.#wakeReplies();
        }
      }
      this.#markDown(new TcpDownError("the server closed the connection"));
    } catch (error) {
      this.#markDown(new TcpDownError((error as Error).message));
    }
  }

  #wakeReplies(): void {
    const wake = this.#replyWaiter;
    this.#replyWaiter = null;
    wake?.();
  }

  #markDown(error: Error): void {
    if (this.#conn === null) return;
    this.#down ??= error;
    this.#wakeReplies();
  }

  /** Writes `data`; with `replies` > 0 waits for that many reply lines and returns them. */
  async send(data: Uint8Array, replies: number): Promise<string[]> {
    const conn = this.#conn;
    if (conn === null || this.#down) throw this.#down ?? new TcpDownError("not connected");
    this.#replies = [];
    this.#wanted = replies;
    try {
      await writeAll(conn, data);
    } catch (error) {
      throw new TcpDownError((error as Error).message);
    }
    if (replies === 0) return [];
    const deadline = Date.now() + this.#options.replyTimeoutMs;
    while (this.#replies.length < replies) {
      if (this.#down) throw this.#down;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new TcpDownError(`no reply within ${this.#options.replyTimeoutMs} ms`);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#replyWaiter = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
    this.#wanted = 0;
    return this.#replies;
  }

  /** Closes the connection (after a failure, or at the end). */
  async close(): Promise<void> {
    const conn = this.#conn;
    this.#conn = null;
    if (conn === null) return;
    try {
      conn.close();
    } catch {
      // Already closed.
    }
    await this.#reading;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Why a message cannot be forwarded as one line, or null if it can. */
export function poisonReason(body: Uint8Array, maxLineBytes: number): string | null {
  if (body.byteLength > maxLineBytes) {
    return `${body.byteLength} bytes, over the limit of ${maxLineBytes}`;
  }
  if (body.includes(LF) || body.includes(CR)) return "it contains a line break";
  return null;
}

/** Options for {@link runBridge}. */
export interface BridgeOptions {
  /** The TCP server to forward to. */
  tcp: NetAddress;
  /** The queue to consume. Default `Go`. */
  queue?: string;
  /** Declare the queue durable. Default false. */
  durable?: boolean;
  /** Declare the queue with this dead-letter exchange. Default none. */
  deadLetterExchange?: string;
  /** Bind the queue to this existing exchange with this routing key. Default none. */
  bind?: { exchange: string; routingKey: string };
  /** Most unacknowledged messages in flight. Default 100. */
  prefetch?: number;
  /** Ack only after the server answered each line with a line. Default false. */
  awaitReply?: boolean;
  /** How long to wait for replies, in ms. Default 10000. */
  replyTimeoutMs?: number;
  /** Longest message (and reply) in bytes. Default 65536. */
  maxLineBytes?: number;
  /** How long to try reaching the broker at start, in ms. Default 5000. */
  connectTimeoutMs?: number;
  /** CA certificates (PEM) for an amqps:// broker, beyond the system's. Default none. */
  ca?: string[];
  /** Print no `Forwarded:` lines. Default false. */
  quiet?: boolean;
  /** Aborting it stops the bridge; unforwarded messages stay in the queue. */
  signal: AbortSignal;
  /** Where stdout lines go. */
  out: (line: string) => Promise<void>;
  logger: Logger;
}

/** Forwards a queue to a TCP server until `signal` aborts or the broker link fails. */
export async function runBridge(url: string, options: BridgeOptions): Promise<void> {
  const log = options.logger;
  const maxLineBytes = options.maxLineBytes ?? 64 * 1024;
  const tcp = new TcpTarget(options.tcp, {
    maxLineBytes,
    replyTimeoutMs: options.replyTimeoutMs ?? 10_000,
    logger: log,
  });
  const signal = options.signal;

  const reconnectTcp = async (consumer: QueueConsumer, reason: Error): Promise<boolean> => {
    log.info(`TCP ${tcp.display}: ${reason.message}; unforwarded messages go back to the queue`);
    await consumer.pause();
    await tcp.close();
    try {
      await tcp.connect(signal);
    } catch {
      return false; // Interrupted.
    }
    await options.out(`Connected to ${tcp.display}`);
    await consumer.resume();
    return true;
  };

  const forward = async (consumer: QueueConsumer, batch: ConsumeMessage[], settle: Settle) => {
    const good: ConsumeMessage[] = [];
    const parts: Uint8Array[] = [];
    let size = 0;
    for (const message of batch) {
      const reason = poisonReason(message.content, maxLineBytes);
      if (reason !== null) {
        settle.reject(message, false);
        log.error(`Rejected a message that cannot be one line (${reason}); not requeued`);
        continue;
      }
      good.push(message);
      parts.push(message.content, Uint8Array.of(LF));
      size += message.content.byteLength + 1;
    }
    if (good.length === 0) return true;
    const data = new Uint8Array(size);
    for (let i = 0, offset = 0; i < parts.length; offset += parts[i++].byteLength) {
      data.set(parts[i], offset);
    }
    let replies: string[];
    try {
      replies = await tcp.send(data, options.awaitReply ? good.length : 0);
    } catch (error) {
      if (!(error instanceof TcpDownError)) throw error;
      return await reconnectTcp(consumer, error);
    }
    settle.ack(good[good.length - 1]);
    if (!options.quiet) {
      await options.out(
        good.map((m, i) =>
          `Forwarded: ${logPayload(String(m.content))}${
            i < replies.length ? ` -> ${logPayload(replies[i])}` : ""
          }`
        )
          .join("\n"),
      );
    }
    return true;
  };

  let consumer: QueueConsumer | null = null;
  const opened = QueueConsumer.open(url, {
    queue: options.queue ?? "Go",
    durable: options.durable,
    deadLetterExchange: options.deadLetterExchange,
    bind: options.bind,
    prefetch: options.prefetch,
    connectTimeoutMs: options.connectTimeoutMs,
    ca: options.ca,
    signal,
    start: false,
    logger: log,
    handle: (batch, settle) => forward(consumer!, batch, settle),
  });
  consumer = await opened;
  try {
    await options.out("Connected to the RabbitMQ server!");
    try {
      await tcp.connect(signal);
    } catch {
      return; // Interrupted before the TCP server ever came up.
    }
    await options.out(`Connected to ${tcp.display}`);
    await consumer.resume();
    await Promise.race([consumer.finished, whenAborted(signal)]);
  } finally {
    await consumer.stop();
    await tcp.close();
  }
  await consumer.finished;
}

const spec = {
  name: "mq_to_tcp",
  summary: "Forwards the messages of a RabbitMQ queue, one line each, to a TCP server.",
  args: "",
  maxArgs: 0,
  options: {
    tcp: { type: "string", arg: "HOST:PORT", description: "the TCP server (required)" },
    ...AMQP_OPTIONS,
    "dead-letter-exchange": {
      type: "string",
      arg: "NAME",
      description: "declare the queue with this dead-letter exchange (for rejected messages)",
    },
    prefetch: {
      type: "string",
      arg: "N",
      default: "100",
      description: "most unacknowledged messages in flight",
    },
    "await-reply": {
      type: "boolean",
      description: "ack a message only after the server answered its line with a line",
    },
    "reply-timeout": {
      type: "string",
      arg: "DURATION",
      default: "10s",
      description: "with --await-reply: reconnect if no reply comes within this time",
    },
    "max-line": {
      type: "string",
      arg: "BYTES",
      default: "65536",
      description: "longest message (and reply line); longer messages are rejected",
    },
    quiet: { type: "boolean", description: "print no Forwarded: lines" },
  },
  notes: `Each message travels as one line (body + "\\n") and is acknowledged once written
to the socket (--await-reply: once answered). Messages with a line break or
over --max-line bytes are rejected without requeue (dead-lettered if the queue
has a dead-letter exchange). While the TCP server is down, messages stay in
the queue. Delivery is at least once: after a failure the server may see a
line again. The password of the URL is never printed.

Examples:
  mq_to_tcp --tcp 127.0.0.1:1234
  mq_to_tcp --tcp 127.0.0.1:1234 --await-reply --queue jobs --dead-letter-exchange dlx`,
} as const;

/** Runs the bridge until SIGINT or SIGTERM; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values }) => {
    const url = usage(() => resolveAmqpUrl(values.url, Deno.env.get("AMQP_URL")));
    if (values.tcp === undefined) throw new UsageError("Missing --tcp HOST:PORT");
    const tcpText = values.tcp;
    const options = {
      tcp: usage(() => parseHostPort(tcpText)),
      queue: values.queue,
      durable: values.durable,
      deadLetterExchange: values["dead-letter-exchange"],
      bind: usage(() => bindingOption(values)),
      prefetch: parseIntOption(values.prefetch, "prefetch", { min: 1, max: 65535 }),
      awaitReply: values["await-reply"],
      replyTimeoutMs: parseDurationOption(values["reply-timeout"], "reply-timeout"),
      maxLineBytes: parseIntOption(values["max-line"], "max-line", { min: 1 }),
      connectTimeoutMs: parseDurationOption(values["connect-timeout"], "connect-timeout"),
      ca: amqpCa(url, values.ca),
      quiet: values.quiet,
    };
    const controller = new AbortController();
    using _signals = abortOnSignals(controller);
    const out = (line: string) => writeAll(Deno.stdout, encoder.encode(line + "\n"));
    await out("RabbitMQ to TCP bridge");
    await runBridge(url, {
      ...options,
      signal: controller.signal,
      out,
      logger: new Logger(),
    });
    return 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
