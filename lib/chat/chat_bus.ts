/**
 * One chat room across servers through RabbitMQ (`--bus amqp://...`):
 * every instance publishes its hub's events to a topic exchange, with the
 * room as routing key, and reads what the others publish from its own
 * exclusive, auto-delete queue. The room logic (sequence numbers, rosters,
 * heartbeats, local-only mode) is the {@link RoomLink}'s; this file moves
 * its messages and keeps the connection:
 *
 * - publisher confirms: a message the broker has not confirmed when the
 *   connection drops is published again after the reconnect (the link's
 *   sequence numbers drop the copy a peer may already have);
 * - a lost connection is retried with exponential backoff and jitter, for
 *   as long as the server runs; meanwhile the room is local-only;
 * - the URL is only ever printed with its password replaced by `***`.
 *
 * @module
 */
import amqp from "amqplib";
import {
  amqpCa,
  type AmqpFailure,
  amqpTarget,
  backoffDelay,
  classifyAmqpError,
  parseAmqpUrl,
  redactUrl,
} from "../amqp/amqp.ts";
import { Buffer } from "node:buffer";
import { type OptionSpec, parseDurationOption, UsageError } from "../cli/cli.ts";
import type { ChatHub } from "./hub.ts";
import {
  checkLinkMessage,
  DEFAULT_HEARTBEAT_MS,
  type LinkMessage,
  RoomLink,
  type RoomLinkOptions,
} from "./room_link.ts";
import { WorkerBus, workerChannelName } from "./worker_bus.ts";

/** The exchange every instance publishes to, unless told otherwise. */
export const DEFAULT_EXCHANGE = "netkit.chat";
/** The room (routing key), unless told otherwise. */
export const DEFAULT_ROOM = "lobby";
/** First wait before reconnecting; it doubles per failure. */
const MIN_BACKOFF_MS = 250;
/** Longest wait between attempts: a broker back after an outage is found within this. */
const MAX_BACKOFF_MS = 15_000;
/** Largest message taken from the bus: a roster of many members, far above one chat message. */
const MAX_BUS_MESSAGE_BYTES = 8 * 1024 * 1024;
/** Unconfirmed messages kept for re-sending; beyond it the broker is not keeping up. */
const MAX_UNCONFIRMED = 50_000;

/** Options for {@link AmqpChatBus.connect}. */
export interface AmqpChatBusOptions extends RoomLinkOptions {
  /** The exchange (a topic exchange, declared durable). Default `netkit.chat`. */
  exchange?: string;
  /** The room, used as routing key. Default `lobby`. */
  room?: string;
  /** First wait before reconnecting. Default 250 ms. */
  minBackoffMs?: number;
  /** Longest wait between reconnection attempts. Default 15 s. */
  maxBackoffMs?: number;
  /** CA certificates (PEM) for an amqps:// broker, beyond the system's. Default none. */
  ca?: string[];
}

/**
 * Why joining the room failed, for people, and whether retrying can help:
 * lib/amqp/amqp.ts's classification, plus Deno's net permission (which no retry
 * fixes) with a hint on how to grant it.
 */
export function busFailure(error: unknown, url: string): AmqpFailure {
  const code = (error as { code?: unknown } | null)?.code;
  if (
    code === "EPERM" || code === "EACCES" || error instanceof Deno.errors.NotCapable ||
    error instanceof Deno.errors.PermissionDenied
  ) {
    return {
      fatal: true,
      message: `${messageOf(error)} (allow it: deno run --allow-net=...,${amqpTarget(url).where})`,
    };
  }
  return classifyAmqpError(error, url);
}

type Connection = Awaited<ReturnType<typeof amqp.connect>>;
type ConfirmChannel = Awaited<ReturnType<Connection["createConfirmChannel"]>>;

/** Links a hub to the other instances of its room through a RabbitMQ exchange. */
export class AmqpChatBus implements AsyncDisposable, RoomBus {
  /** The room logic; the hub's bus. */
  readonly link: RoomLink;
  readonly #url: string;
  readonly #ca: string[] | undefined;
  readonly #exchange: string;
  readonly #room: string;
  readonly #minBackoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #log: (line: string) => void;
  #connection: Connection | null = null;
  #channel: ConfirmChannel | null = null;
  /** Sent, not yet confirmed: sequence number to bytes, in sending order. */
  #unconfirmed = new Map<number, Buffer>();
  #closing = false;
  #wake: (() => void) | null = null;
  #running: Promise<void> = Promise.resolve();
  #badMessages = 0;

  private constructor(hub: ChatHub, url: string, options: AmqpChatBusOptions) {
    this.#url = url;
    this.#ca = options.ca;
    this.#exchange = options.exchange ?? DEFAULT_EXCHANGE;
    this.#room = options.room ?? DEFAULT_ROOM;
    this.#minBackoffMs = options.minBackoffMs ?? MIN_BACKOFF_MS;
    this.#maxBackoffMs = options.maxBackoffMs ?? MAX_BACKOFF_MS;
    this.#log = options.onLog ?? (() => {});
    this.link = new RoomLink(hub, (m) => this.#publish(m), {
      transportName: "RabbitMQ",
      ...options,
    });
  }

  /**
   * Connects `hub` to the room on the broker at `url` and attaches itself
   * as the hub's bus. A broker that refuses the login (or the vhost) is an
   * error; one that cannot be reached yet is retried in the background
   * while the room serves local members.
   */
  static async connect(
    hub: ChatHub,
    url: string,
    options: AmqpChatBusOptions = {},
  ): Promise<AmqpChatBus> {
    parseAmqpUrl(url);
    const bus = new AmqpChatBus(hub, url, options);
    hub.attachBus(bus.link);
    try {
      await bus.#open();
    } catch (error) {
      const failure = busFailure(error, url);
      if (failure.fatal) {
        hub.attachBus(undefined);
        throw new Error(`Cannot join the room on ${redactUrl(url)}: ${failure.message}`);
      }
      bus.#log(
        `Bus: cannot reach ${redactUrl(url)} (${messageOf(error)}); ` +
          "the room is local-only, retrying",
      );
    }
    bus.#running = bus.#keepConnected();
    return bus;
  }

  /** Whether the room spans the instances right now. */
  get connected(): boolean {
    return this.link.up;
  }

  /** Says goodbye to the room, closes the connection and stops reconnecting. */
  async close(): Promise<void> {
    if (this.#closing) return await this.#running;
    this.#closing = true;
    this.link.close();
    this.#wake?.();
    const connection = this.#connection;
    if (connection) {
      await this.#channel?.waitForConfirms().catch(() => {});
      await connection.close().catch(() => {});
    }
    await this.#running;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Connects, declares the exchange and this instance's queue, re-sends, and says hello. */
  async #open(): Promise<void> {
    const connection = await amqp.connect(this.#url, this.#ca ? { ca: this.#ca } : {});
    let channel: ConfirmChannel;
    try {
      connection.on(
        "error",
        (error: Error) => this.#log(`Bus: connection error: ${error.message}`),
      );
      channel = await connection.createConfirmChannel();
      channel.on("error", (error: Error) => this.#log(`Bus: channel error: ${error.message}`));
      await channel.assertExchange(this.#exchange, "topic", { durable: true });
      const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
      await channel.bindQueue(queue, this.#exchange, this.#room);
      await channel.consume(queue, (message) => {
        if (message) this.#deliver(message.content);
      }, { noAck: true });
    } catch (error) {
      await connection.close().catch(() => {});
      throw error;
    }
    if (this.#closing) {
      await connection.close().catch(() => {});
      return;
    }
    this.#connection = connection;
    this.#channel = channel;
    const resend = [...this.#unconfirmed];
    this.#unconfirmed.clear();
    for (const [seq, bytes] of resend) this.#send(seq, bytes, true);
    if (resend.length > 0) this.#log(`Bus: re-sent ${resend.length} unconfirmed messages`);
    this.#log(`Bus: joined room "${this.#room}" on ${redactUrl(this.#url)} (${this.#exchange})`);
    this.link.connected();
  }

  /** Waits for the connection to drop, then reconnects with backoff, until closed. */
  async #keepConnected(): Promise<void> {
    let failures = 0;
    while (!this.#closing) {
      const connection = this.#connection;
      if (connection) {
        const reason = await closedReason(connection, this.#channel!);
        this.#connection = null;
        this.#channel = null;
        if (this.#closing) return;
        this.link.disconnected(reason);
        connection.close().catch(() => {});
        failures = 0;
      }
      const wait = backoffDelay(++failures, {
        initialMs: this.#minBackoffMs,
        maxMs: this.#maxBackoffMs,
      });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
      if (this.#closing) return;
      try {
        await this.#open();
      } catch (error) {
        // The first failure and every tenth: an outage must not flood the log.
        if (failures === 1 || failures % 10 === 0) {
          this.#log(
            `Bus: reconnecting failed (${busFailure(error, this.#url).message}), ` +
              `attempt ${failures}; retrying with backoff up to ${this.#maxBackoffMs / 1000} s`,
          );
        }
      }
    }
  }

  #publish(message: LinkMessage): void {
    const bytes = Buffer.from(JSON.stringify(message));
    // A beat is worth nothing late; anything else is re-sent until confirmed.
    this.#send(message.seq, bytes, message.kind !== "beat");
  }

  #send(seq: number, bytes: Buffer, keep: boolean): void {
    const channel = this.#channel;
    if (!channel) return;
    if (keep) {
      if (this.#unconfirmed.size >= MAX_UNCONFIRMED) {
        this.#log(`Bus: ${MAX_UNCONFIRMED} messages unconfirmed; the broker is not keeping up`);
        keep = false;
      } else {
        this.#unconfirmed.set(seq, bytes);
      }
    }
    try {
      channel.publish(this.#exchange, this.#room, bytes, {
        contentType: "application/json",
      }, (error: unknown) => {
        if (!error) {
          this.#unconfirmed.delete(seq);
        } else if (messageOf(error) !== "channel closed") {
          // A nack: the broker could not take it. Re-sending it now would break the order.
          this.#unconfirmed.delete(seq);
          this.#log(`Bus: the broker refused message ${seq} (${messageOf(error)}); it is lost`);
        }
        // Channel closed: kept, re-sent after the reconnect.
      });
    } catch (error) {
      // The channel is closing; the message stays in #unconfirmed for the reconnect.
      if (!keep) return;
      this.#log(`Bus: publish failed (${messageOf(error)}), will re-send`);
    }
  }

  #deliver(content: Buffer): void {
    let message: LinkMessage;
    try {
      if (content.byteLength > MAX_BUS_MESSAGE_BYTES) {
        throw new RangeError(`Message of ${content.byteLength} bytes is too large`);
      }
      message = checkLinkMessage(JSON.parse(content.toString("utf8")));
    } catch (error) {
      // Say so a few times, then count silently: a flood must not flood the log.
      if (++this.#badMessages <= 10 || this.#badMessages % 1000 === 0) {
        this.#log(
          `Bus: dropped a malformed message (${messageOf(error)}), ` +
            `${this.#badMessages} so far`,
        );
      }
      return;
    }
    this.link.receive(message);
  }
}

/** Resolves with a reason once the connection or the channel closes. */
function closedReason(connection: Connection, channel: ConfirmChannel): Promise<string> {
  return new Promise((resolve) => {
    let reason = "connection closed";
    connection.on("error", (error: Error) => reason = error.message);
    connection.once("close", () => resolve(reason));
    channel.once("close", () => resolve("channel closed"));
  });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The chat servers' options for joining a room that spans servers. */
export const BUS_OPTIONS = {
  bus: {
    type: "string",
    arg: "URL",
    description:
      "share the room with other servers via RabbitMQ: amqp://user:pass@host:5672 (or amqps://)",
  },
  "bus-exchange": {
    type: "string",
    arg: "NAME",
    default: DEFAULT_EXCHANGE,
    description: "the topic exchange the servers share",
  },
  "bus-ca": {
    type: "string",
    arg: "FILE",
    description: "also trust the CA certificates in FILE (PEM) for an amqps:// --bus",
  },
  room: {
    type: "string",
    arg: "NAME",
    default: DEFAULT_ROOM,
    description: "the room's name on the bus (its routing key)",
  },
  "bus-heartbeat": {
    type: "string",
    arg: "DURATION",
    default: `${DEFAULT_HEARTBEAT_MS / 1000}s`,
    description: "how often each server says it is alive (4 missed: gone)",
  },
} as const satisfies Record<string, OptionSpec>;

/** A name the broker takes as it is: no wildcards (`*`, `#`), not the reserved `amq.` prefix. */
const BUS_NAME = /^(?!amq\.)[A-Za-z0-9_.:-]{1,200}$/;

/** Where and how a server joins the room; `url` null for a server on its own. */
export interface BusConfig extends AmqpChatBusOptions {
  url: string | null;
}

/** Checks the `--bus` options; throws a UsageError quoting a bad value (never the password). */
export function busConfig(values: {
  bus?: string;
  "bus-exchange": string;
  room: string;
  "bus-heartbeat": string;
  "bus-ca"?: string;
}): BusConfig {
  const url = values.bus === undefined ? null : checkedUrl(values.bus);
  if (values["bus-ca"] !== undefined && url === null) {
    throw new UsageError(`--bus-ca "${values["bus-ca"]}" needs --bus amqps://...`);
  }
  const ca = url === null ? undefined : amqpCa(url, values["bus-ca"], "bus-ca");
  for (const option of ["bus-exchange", "room"] as const) {
    if (!BUS_NAME.test(values[option])) {
      throw new UsageError(
        `Invalid --${option} "${values[option]}": use 1-200 letters, digits, and _ . : - ` +
          "(not starting with amq.)",
      );
    }
  }
  const heartbeatMs = parseDurationOption(values["bus-heartbeat"], "bus-heartbeat");
  if (heartbeatMs < 50 || heartbeatMs > 600_000) {
    throw new UsageError(`Invalid --bus-heartbeat "${values["bus-heartbeat"]}": must be 50ms-10m`);
  }
  return { url, exchange: values["bus-exchange"], room: values.room, heartbeatMs, ca };
}

function checkedUrl(url: string): string {
  try {
    parseAmqpUrl(url);
    return url;
  } catch (error) {
    throw new UsageError(messageOf(error).replace("AMQP URL", "--bus"));
  }
}

/** Whatever links a server's hub to the rest of its room, closed at shutdown. */
export interface RoomBus {
  readonly link: RoomLink;
  close(): Promise<void> | void;
}

/**
 * Links one server thread's hub to the rest of its room: through RabbitMQ
 * when `config.url` is set (every worker is then an instance of its own),
 * else, with several workers, to the other workers of the server listening
 * on `port`; null for a lone server.
 */
export async function connectBus(
  hub: ChatHub,
  config: BusConfig,
  where: { workers: number; port: number },
): Promise<RoomBus | null> {
  if (config.url) return await AmqpChatBus.connect(hub, config.url, config);
  if (where.workers > 1) return new WorkerBus(hub, workerChannelName(where.port), config);
  return null;
}
