/**
 * What the RabbitMQ programs share: the broker URL (from `--url`,
 * `AMQP_URL` or the default) with its password redacted wherever it is
 * shown, telling failures worth retrying (broker down or restarting) from
 * those that never heal (wrong password, unknown vhost, a queue declared
 * with other settings), and {@link AmqpLink}, a connection that reconnects
 * with exponential backoff through amqplib's `recovery` option and runs a
 * setup (channels, queue, consumer) after every connect.
 *
 * @module
 */
import amqp from "amqplib";
import type { ChannelModel, RecoveringChannelModel } from "amqplib";
import type { Logger } from "../cli/log.ts";
import { UsageError } from "../cli/cli.ts";
import { tlsClientSettings, tlsErrorText } from "../net/tls.ts";

/** The broker the book's programs use. */
export const DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/";
/** How long the programs try to reach the broker at start unless told otherwise. */
export const DEFAULT_CONNECT_TIMEOUT = "5s";
/**
 * The command-line options the RabbitMQ programs share, for their
 * `runCommand` specs, with the short names of amqp-tools (`-u URL`,
 * `-q QUEUE`, `-e EXCHANGE`, `-r KEY`).
 */
export const AMQP_OPTIONS = {
  url: {
    type: "string",
    short: "u",
    arg: "URL",
    description: "broker URL (default $AMQP_URL or amqp://guest:guest@localhost:5672/)",
  },
  queue: {
    type: "string",
    short: "q",
    arg: "NAME",
    default: "Go",
    description: "queue to declare and use",
  },
  durable: { type: "boolean", description: "declare the queue durable" },
  exchange: {
    type: "string",
    short: "e",
    arg: "NAME",
    description: "exchange to bind the queue to (it must exist)",
  },
  "routing-key": {
    type: "string",
    short: "r",
    arg: "KEY",
    description: "routing key of the binding (default the queue's name)",
  },
  "connect-timeout": {
    type: "string",
    arg: "DURATION",
    default: DEFAULT_CONNECT_TIMEOUT,
    description: "how long to try reaching the broker at start",
  },
  ca: {
    type: "string",
    arg: "FILE",
    description: "also trust the CA certificates in FILE (PEM) for an amqps:// broker",
  },
} as const;
/**
 * The binding `-e EXCHANGE [-r KEY]` asks for, or undefined without `-e`;
 * the routing key defaults to the queue's name, as amqp-consume binds.
 */
export function bindingOption(
  values: { exchange?: string; "routing-key"?: string; queue: string },
): { exchange: string; routingKey: string } | undefined {
  if (values.exchange === undefined) {
    if (values["routing-key"] !== undefined) {
      throw new UsageError(`--routing-key "${values["routing-key"]}" needs --exchange`);
    }
    return undefined;
  }
  return { exchange: values.exchange, routingKey: values["routing-key"] ?? values.queue };
}

/** What stands in for a password wherever a URL is shown. */
const REDACTED = "***";

/**
 * Picks the broker URL: the `--url` option, else `AMQP_URL`, else
 * {@link DEFAULT_AMQP_URL}; throws a `SyntaxError` (password redacted) if
 * it is not an `amqp://` or `amqps://` URL.
 */
export function resolveAmqpUrl(option?: string, env?: string): string {
  const text = option ?? env ?? DEFAULT_AMQP_URL;
  parseAmqpUrl(text);
  return text;
}

/** Parses an AMQP URL, checking its scheme, host and port; errors quote it redacted. */
export function parseAmqpUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new SyntaxError(`Invalid AMQP URL "${redactUrl(text)}": not a URL`);
  }
  if (url.protocol !== "amqp:" && url.protocol !== "amqps:") {
    throw new SyntaxError(
      `Invalid AMQP URL "${redactUrl(text)}": must start with amqp:// or amqps://`,
    );
  }
  if (url.hostname === "") {
    throw new SyntaxError(`Invalid AMQP URL "${redactUrl(text)}": no host`);
  }
  return url;
}

/**
 * Reads `--ca FILE` (PEM) for the broker at `url`: the CAs to trust beyond
 * the system's, or undefined without `--ca`. A `UsageError` when `url` is
 * no `amqps://` URL, since a plain connection would silently ignore it.
 */
export function amqpCa(
  url: string,
  caFile: string | undefined,
  option = "ca",
): string[] | undefined {
  if (caFile === undefined) return undefined;
  if (parseAmqpUrl(url).protocol !== "amqps:") {
    throw new UsageError(`--${option} "${caFile}" needs an amqps:// URL, not "${redactUrl(url)}"`);
  }
  return tlsClientSettings({ ca: caFile })?.caCerts;
}

/** The URL with its password replaced by `***`, safe to print and log. */
export function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.password === "") return text;
    url.password = REDACTED;
    return url.href;
  } catch {
    // Not a URL: hide whatever sits between "user:" and "@".
    return text.replace(/\/\/([^:/@]*):[^@/]*@/, `//$1:${REDACTED}@`);
  }
}

/** Where an AMQP URL points, for messages: host, port, vhost and user. */
export interface AmqpTarget {
  /** `host:port`, as connected to. */
  where: string;
  /** The virtual host, `/` by default. */
  vhost: string;
  /** The user name, `guest` by default. */
  user: string;
}

/** Describes where a URL points, without its password. */
export function amqpTarget(text: string): AmqpTarget {
  const url = parseAmqpUrl(text);
  const port = url.port || (url.protocol === "amqps:" ? "5671" : "5672");
  const path = url.pathname.slice(1);
  return {
    where: `${url.hostname}:${port}`,
    vhost: path === "" ? "/" : decodeURIComponent(path),
    user: url.username === "" && url.password === "" ? "guest" : decodeURIComponent(url.username),
  };
}

/** A failure described for people, and whether trying again can help. */
export interface AmqpFailure {
  /** Trying again cannot help: wrong credentials, unknown vhost, bad declaration. */
  fatal: boolean;
  /** One line, password free. */
  message: string;
}

/** AMQP reply codes after which the same operation may succeed later. */
const RETRYABLE_CODES = new Set([
  320, // CONNECTION_FORCED: the broker is shutting down or an operator closed us
  541, // INTERNAL_ERROR
]);

/**
 * Classifies an error from amqplib or the socket: wrong credentials, an
 * unknown or forbidden vhost and channel errors such as a queue declared
 * with other settings are fatal; refused, reset or timed out connections
 * and broker shutdowns are worth retrying.
 */
export function classifyAmqpError(error: unknown, url: string): AmqpFailure {
  const text = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  const target = amqpTarget(url);
  if (/ACCESS.REFUSED/.test(text) && /Login|authentication|Handshake/i.test(text)) {
    return {
      fatal: true,
      message: `Login refused by ${target.where} for user "${target.user}": ` +
        `wrong user name or password`,
    };
  }
  if (/Expected ConnectionOpenOk; got <ConnectionClose/.test(text) || /NOT_ALLOWED/.test(text)) {
    return {
      fatal: true,
      message: `Cannot open virtual host "${target.vhost}" on ${target.where}: ` +
        `it does not exist or user "${target.user}" may not use it`,
    };
  }
  if (/invalid peer certificate|certificate/i.test(text)) {
    // The broker's certificate will not become trusted by retrying.
    return {
      fatal: true,
      message: `TLS handshake with ${target.where} failed: ${tlsErrorText(text)}`,
    };
  }
  if (typeof code === "number" && code >= 400 && !RETRYABLE_CODES.has(code)) {
    return { fatal: true, message: `Broker refused: ${text.replace(/^Operation failed: /, "")}` };
  }
  return { fatal: false, message: text };
}

/** A failure that retrying cannot fix; programs report it and exit 1. */
export class AmqpFatalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AmqpFatalError";
  }
}

/** How reconnect delays grow. */
export interface BackoffOptions {
  /** First delay in ms. Default 100. */
  initialMs?: number;
  /** Longest delay in ms. Default 5000. */
  maxMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Random spread, a fraction of the delay. Default 0.2. */
  jitter?: number;
}

/**
 * The delay before reconnect attempt `attempt` (1, 2, ...): exponential
 * from `initialMs`, capped at `maxMs`, spread by `jitter` so restarted
 * clients do not all come back at the same instant.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const { initialMs = 100, maxMs = 5000, factor = 2, jitter = 0.2 } = options;
  const base = Math.min(maxMs / (1 + jitter), initialMs * factor ** Math.max(0, attempt - 1));
  return Math.round(base * (1 + jitter * (2 * Math.random() - 1)));
}

/** Options for {@link AmqpLink.open}. */
export interface AmqpLinkOptions {
  /** Where diagnostics go. */
  logger: Logger;
  /**
   * Runs after every connect with the fresh connection: open channels,
   * declare queues, start consumers. A fatal error here (e.g. a queue
   * declared with other settings) ends the link; others are retried.
   */
  setup: (model: ChannelModel, connects: number) => Promise<void>;
  /** How long to keep trying to reach the broker at start, in ms. Default 30000. */
  connectTimeoutMs?: number;
  /** How long to keep trying after the connection dropped, in ms. Default forever. */
  reconnectTimeoutMs?: number;
  /** Called when an established connection is lost, before reconnecting. */
  onDisconnect?: (error: Error) => void;
  /** How delays between attempts grow. */
  backoff?: BackoffOptions;
  /** Aborting it while connecting stops trying; {@link AmqpLink.open} rejects. */
  signal?: AbortSignal;
  /** CA certificates (PEM) an amqps:// broker may be signed by, beyond the system's. */
  ca?: string[];
}

/**
 * One connection to the broker that comes back by itself: it retries the
 * first connect for `connectTimeoutMs`, reconnects with exponential
 * backoff whenever the connection drops, runs `setup` after each connect,
 * and gives up at once (with a clear {@link AmqpFatalError}) on failures
 * that cannot heal.
 */
export class AmqpLink implements AsyncDisposable {
  /** The redacted URL, for messages. */
  readonly displayUrl: string;
  /** Rejects with an {@link AmqpFatalError} once the link has given up; never resolves. */
  readonly failed: Promise<never>;
  #model: RecoveringChannelModel;
  #closed = false;

  private constructor(model: RecoveringChannelModel, displayUrl: string, failed: Promise<never>) {
    this.#model = model;
    this.displayUrl = displayUrl;
    this.failed = failed;
  }

  /** Connects (retrying until `connectTimeoutMs`) and runs the first setup. */
  static async open(url: string, options: AmqpLinkOptions): Promise<AmqpLink> {
    const log = options.logger;
    const displayUrl = redactUrl(url);
    const connectTimeoutMs = options.connectTimeoutMs ?? 30_000;
    const reconnectTimeoutMs = options.reconnectTimeoutMs ?? Infinity;
    let deadline = Date.now() + connectTimeoutMs;
    let phaseStart = Date.now();
    let connected = false;
    let connects = 0;
    let last: AmqpFailure | null = null;
    let giveUp!: (error: AmqpFatalError) => void;
    const failed = new Promise<never>((_, reject) => giveUp = reject);
    failed.catch(() => {}); // Callers that never wait for it must not see an unhandled rejection.

    const gaveUpError = (): AmqpFatalError => {
      if (last?.fatal) return new AmqpFatalError(last.message);
      const secs = ((Date.now() - phaseStart) / 1000).toFixed(1);
      return new AmqpFatalError(
        `Cannot reach RabbitMQ at ${displayUrl} after ${secs} s: ${last?.message ?? "no answer"}`,
      );
    };

    const model = await amqp.connect(url, {
      // One attempt (TCP connect and AMQP handshake) may take this long.
      timeout: Math.max(1000, Math.min(connectTimeoutMs, 10_000)),
      ...(options.ca ? { ca: options.ca } : {}),
      recovery: {
        waitForConnect: false,
        setup: (m: ChannelModel) => options.setup(m, ++connects),
        calculateDelay: (attempt: number) => {
          if (last?.fatal) throw gaveUpError();
          // The last wait is cut to the deadline, so the timeout given is the time tried
          // (giving up when the next full backoff would pass it stopped at half of 3 s).
          const left = deadline - Date.now();
          if (left <= 0) throw gaveUpError();
          const delay = Math.min(backoffDelay(attempt, options.backoff), left);
          log.info(`RabbitMQ: ${last?.message ?? "not reachable"}; retrying in ${delay} ms`);
          return delay;
        },
      },
    });
    model.on("error", (error: Error) => log.info(`RabbitMQ: ${error.message}`));
    model.on("blocked", (reason: string) => {
      log.info(`RabbitMQ: the broker holds back publishing (${reason}); waiting`);
    });
    model.on("unblocked", () => log.info("RabbitMQ: publishing resumed"));
    model.on("connect-failed", (error: Error) => last = classifyAmqpError(error, url));
    model.on("connect", () => {
      if (connected) log.info(`RabbitMQ: reconnected to ${displayUrl}`);
      connected = true;
      last = null;
    });
    model.on("disconnect", (error: Error) => {
      last = classifyAmqpError(error, url);
      phaseStart = Date.now();
      deadline = phaseStart + reconnectTimeoutMs;
      log.info(`RabbitMQ: connection lost (${last.message}); reconnecting`);
      options.onDisconnect?.(error);
    });
    model.on("reconnect-failed", (error: Error) => {
      giveUp(error instanceof AmqpFatalError ? error : gaveUpError());
    });
    const link = new AmqpLink(model, displayUrl, failed);
    const signal = options.signal;
    const interrupt = () => {
      last = { fatal: true, message: "Interrupted while connecting to RabbitMQ" };
      link.close();
    };
    signal?.addEventListener("abort", interrupt, { once: true });
    try {
      if (signal?.aborted) interrupt();
      await model.waitForConnect();
    } catch (error) {
      await link.close();
      throw error instanceof AmqpFatalError ? error : gaveUpError();
    } finally {
      signal?.removeEventListener("abort", interrupt);
    }
    return link;
  }

  /** Stops reconnecting and closes the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#model.close().catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Formats an assertQueue reply the way Go's `fmt.Println` prints amqp.Queue: `{Go 1 0}`. */
export function formatQueue(queue: { queue: string; messageCount: number; consumerCount: number }) {
  return `{${queue.queue} ${queue.messageCount} ${queue.consumerCount}}`;
}

/** The parts of amqplib's internals that {@link untilWritten} reads. */
interface ChannelInternals {
  ch?: number;
  connection?: {
    stream?: { writableLength?: number };
    channels?: Array<{ buffer?: { readableLength?: number } } | null>;
  };
}

/**
 * Resolves once everything published on `channel` has left amqplib's
 * buffers and the socket's, i.e. was handed to the kernel: the moment a
 * Go client's `Publish` returns. Reads amqplib internals; if they change,
 * it resolves at once.
 */
export async function untilWritten(channel: object): Promise<void> {
  const c = channel as ChannelInternals;
  const stream = c.connection?.stream;
  const buffer = c.ch === undefined ? undefined : c.connection?.channels?.[c.ch]?.buffer;
  if (stream?.writableLength === undefined || buffer?.readableLength === undefined) return;
  while (buffer.readableLength > 0 || stream.writableLength > 0) {
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}
