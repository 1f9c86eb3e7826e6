#!/usr/bin/env -S deno run --allow-net --allow-read --allow-env=WS_NO_BUFFER_UTIL,WS_NO_UTF_8_VALIDATE
/**
 * ws_client: the WebSocket client of seed 000, usable in pipes like
 * websocat. Each stdin line is sent as a message. When stdout is a pipe
 * (or with `--raw`) each message received is written as it came, followed
 * by a newline, and nothing else; in a terminal it prints as the book's
 * `YYYY/MM/DD HH:MM:SS Received: text`. At the end of input it waits for
 * a first answer to the last line, then until the server has been silent
 * for `--linger` (or closes), then closes with 1000 and exits 0; `-n`
 * leaves closing to the server. The book's
 * idle trap (`Please give me input! N` every 4 s, quitting after the 6th)
 * is there only with `--book`. Ctrl-C (or SIGTERM) sends close 1000 and waits up to 2 s
 * for the server's close.
 *
 *     deno task ws_client localhost:1234 ws
 *     echo 100 | deno task ws_client ws://localhost:1234/ws | wc -l
 *
 * @module
 */
import {
  networkErrorText,
  nodeTlsOptions,
  TLS_CLIENT_OPTIONS,
  type TlsClientSettings,
  tlsClientSettings,
} from "../lib/net/tls.ts";
import { parseHostPort } from "../lib/net/addr.ts";
import {
  parseDurationOption,
  parseIntOption,
  runCommand,
  usage,
  UsageError,
} from "../lib/cli/cli.ts";
import { LineReader, LineTooLongError } from "../lib/io/lines.ts";
import { goLogTime, Logger } from "../lib/cli/log.ts";
import { plainOutput, printSync, writeAllSync } from "../lib/io/print.ts";
import { parseHeaders } from "../lib/cli/headers.ts";
import { describeClose } from "../lib/ws/ws_frame.ts";
// @ts-types="@types/ws"
import NodeWebSocket from "ws";
import { settledWithin } from "../lib/io/deadline.ts";
import { abortOnSignals, whenAborted } from "../lib/cli/signals.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A received message as the seed prints it, `Received: text`; a binary one
 * shows its text when it is UTF-8 (ws_chat_server's room frames are),
 * otherwise its size.
 */
export function describeMessage(data: string | ArrayBuffer): string {
  if (typeof data === "string") return `Received: ${data}`;
  try {
    return `Received (binary): ${utf8.decode(data)}`;
  } catch {
    return `Received: (binary, ${data.byteLength} bytes)`;
  }
}

/** How long Ctrl-C waits for the server's close frame, as the seed does. */
const CLOSE_WAIT_MS = 2_000;
/** Largest message accepted from the server; a larger one closes the connection with 1009. */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** After the end of input, close once the server has been silent this long. */
export const DEFAULT_LINGER_MS = 1_000;
/** After the end of input, how long a server may take to start answering the last line. */
export const DEFAULT_REPLY_WAIT_MS = 10_000;
const encoder = new TextEncoder();
const NEWLINE = encoder.encode("\n");

/** Where the client writes; tests pass their own. */
export interface ClientOutput {
  /** Data: received messages (and, in the book's look, the `Connecting to` line). */
  write(bytes: Uint8Array): void;
  /** Diagnostics: prompts, closes, errors. */
  log: Logger;
}

/** Options for {@link runWsClient}. */
export interface WsClientOptions {
  /** Extra handshake headers (Origin included). Default none. */
  headers?: Headers;
  /** Sub-protocols to offer. Default none. */
  protocols?: string[];
  /**
   * Plain output: each message as it came and a newline, nothing else
   * (timestamps and `Received:` only when false). Default false.
   */
  raw?: boolean;
  /** The book's idle trap: prompt after silence on stdin, close after `idleMax` prompts. Default false. */
  book?: boolean;
  /** With `book`, prompt after this much silence on stdin. Default 4000 ms. */
  idleIntervalMs?: number;
  /** With `book`, close after this many prompts; 0 never. Default 6. */
  idleMax?: number;
  /** At the end of input leave the connection open until the server closes it. Default false. */
  noClose?: boolean;
  /** At the end of input, close once the server has been silent this long. Default 1000 ms. */
  lingerMs?: number;
  /** At the end of input, wait at most this long for a first answer to the last line. Default 10000 ms. */
  replyWaitMs?: number;
  /** Send a ping this often while open; 0 never. Default 0. */
  pingIntervalMs?: number;
  /** Send each line as a binary message. Default false. */
  binary?: boolean;
  /** Longest stdin line in bytes. Default 1 MiB. */
  maxLineBytes?: number;
  /** Give up connecting after this long. Default 10000 ms. */
  connectTimeoutMs?: number;
  /** Where lines come from. Default stdin. */
  input?: ReadableStream<Uint8Array>;
  /** Where output goes. Default stdout and a Logger on stderr. */
  output?: ClientOutput;
  /** Aborting it acts as Ctrl-C. Default: SIGINT or SIGTERM. */
  signal?: AbortSignal;
  /** How a wss:// URL checks the server: extra CAs. Default the system's roots. */
  tls?: TlsClientSettings;
}

/** Turns `SERVER PATH` or a URL into a ws:// or wss:// URL and the seed's two words. */
export function parseTarget(args: string[]): { url: URL; server: string; path: string } {
  if (args.length === 1) {
    let url: URL;
    try {
      url = new URL(args[0]);
    } catch {
      throw new UsageError(`Invalid URL "${args[0]}": expected ws://host:port/path or SERVER PATH`);
    }
    if (url.protocol === "http:") url.protocol = "ws:";
    if (url.protocol === "https:") url.protocol = "wss:";
    if (url.protocol !== "ws:" && url.protocol !== "wss:") {
      throw new UsageError(`Invalid URL "${args[0]}": the scheme must be ws:// or wss://`);
    }
    return { url, server: url.host, path: url.pathname + url.search };
  }
  const [server, path] = args;
  usage(() => parseHostPort(server));
  const url = new URL(`ws://${server}/${path.replace(/^\/+/, "")}`);
  return { url, server, path };
}

/**
 * Connects, pumps stdin lines to the server and messages to the output,
 * and returns the exit code: 0 after a normal close, 1 when the connection
 * failed or the server closed abnormally.
 */
export async function runWsClient(url: URL, options: WsClientOptions = {}): Promise<number> {
  const raw = options.raw ?? false;
  const out = options.output ?? {
    write: (bytes: Uint8Array) => writeAllSync(Deno.stdout, bytes),
    log: new Logger({ timestamps: !raw }),
  };
  const log = out.log;
  const idleIntervalMs = options.idleIntervalMs ?? 4_000;
  const idleMax = options.idleMax ?? 6;
  const lingerMs = options.lingerMs ?? DEFAULT_LINGER_MS;
  const replyWaitMs = options.replyWaitMs ?? DEFAULT_REPLY_WAIT_MS;

  // The `ws` package rather than Deno's WebSocket: that one can neither send a ping
  // (--ping-interval) nor deliver the messages that arrive after close() was called.
  const ws = new NodeWebSocket(url.href, options.protocols ?? [], {
    headers: Object.fromEntries(options.headers ?? []),
    maxPayload: MAX_MESSAGE_BYTES,
    ...nodeTlsOptions(options.tls),
  });
  ws.binaryType = "arraybuffer";
  let opened = false;
  let quitting = false;
  let failure = "";
  let closeCode = 0;
  let lineTooLong = false;
  let lastMessageAt = 0;
  let lastSentAt = 0;
  let onNextMessage: (() => void) | null = null;
  let idleTimer: ReturnType<typeof setTimeout> | undefined;
  let connectTimer: ReturnType<typeof setTimeout> | undefined;
  let pingTimer: ReturnType<typeof setInterval> | undefined;
  const closed = new Promise<void>((resolve) => {
    ws.onclose = (event) => {
      closeCode = event.code;
      if (opened) {
        log.info(
          `Connection closed: close ${describeClose(event.code)}` +
            (event.reason ? ` ${event.reason}` : ""),
        );
      }
      resolve();
    };
  });
  ws.onerror = (event) => {
    failure ||= networkErrorText(event.message || "the connection failed");
  };
  ws.onmessage = (event) => {
    lastMessageAt = performance.now();
    onNextMessage?.();
    const data = event.data as string | ArrayBuffer;
    if (raw) {
      // One message per line, text or binary, so `{...}` events never run together.
      const bytes = typeof data === "string" ? encoder.encode(data + "\n") : new Uint8Array(data);
      out.write(bytes);
      if (typeof data !== "string") out.write(NEWLINE);
      return;
    }
    out.write(encoder.encode(`${goLogTime()} ${describeMessage(data)}\n`));
  };

  /** Sends close 1000 once and waits up to 2 s for the server's close. */
  const quit = async (why: string | null) => {
    if (quitting) return;
    quitting = true;
    clearTimeout(idleTimer);
    if (why) log.info(why);
    if (ws.readyState === ws.OPEN) ws.close(1000);
    else if (ws.readyState === ws.CONNECTING) ws.terminate();
    await settledWithin(closed, CLOSE_WAIT_MS);
  };

  /**
   * At the end of input: messages still on their way (the answers to the
   * last lines) must not be cut off, and a WebSocket has no half-close to
   * tell the server. So wait for a first answer to the last line (a busy
   * server may be slow to start), then until the server has been silent
   * for `lingerMs`.
   */
  const closeWhenQuiet = async () => {
    if (lastSentAt > lastMessageAt) {
      const answered = new Promise<void>((resolve) => onNextMessage = resolve);
      await settledWithin(Promise.race([answered, closed]), replyWaitMs);
      onNextMessage = null;
    }
    const endedAt = performance.now();
    while (!quitting) {
      const wait = Math.max(endedAt, lastMessageAt) + lingerMs - performance.now();
      if (wait <= 0) break;
      await settledWithin(closed, wait);
      if (ws.readyState !== ws.OPEN) return;
    }
    await quit(null);
  };

  const interrupted = new AbortController();
  using _signals = options.signal ? undefined : abortOnSignals(interrupted);
  const signal = options.signal ?? interrupted.signal;
  const stopped = whenAborted(signal);
  const onAbort = stopped.then(() => quit("Caught interrupt signal - quitting!"));

  try {
    const open = new Promise<boolean>((resolve) => {
      ws.onopen = () => resolve(true);
      closed.then(() => resolve(false));
      stopped.then(() => resolve(false));
      connectTimer = setTimeout(() => {
        failure = `timed out after ${options.connectTimeoutMs ?? 10_000} ms`;
        resolve(false);
      }, options.connectTimeoutMs ?? 10_000);
    });
    opened = await open;
    clearTimeout(connectTimer);
    if (!opened) {
      if (!signal.aborted) {
        log.error(`Error: cannot connect to ${url}: ${failure || "closed during the handshake"}`);
        ws.terminate();
        await settledWithin(closed, 100);
        return 1;
      }
      await onAbort;
      return 0;
    }

    if (options.pingIntervalMs) pingTimer = setInterval(() => ws.ping(), options.pingIntervalMs);

    let waits = 0;
    const armIdle = () => {
      clearTimeout(idleTimer);
      if (!options.book || quitting) return;
      idleTimer = setTimeout(() => {
        log.info(`Please give me input! ${waits}`);
        waits++;
        if (idleMax > 0 && waits >= idleMax) {
          // The book sends itself SIGINT here, hence its words.
          quit("Caught interrupt signal - quitting!");
        } else {
          armIdle();
        }
      }, idleIntervalMs);
    };
    armIdle();

    const input = options.input ?? Deno.stdin.readable;
    const reader = new LineReader(input, { maxLineBytes: options.maxLineBytes ?? 1 << 20 });
    const pump = (async () => {
      try {
        for await (const line of reader) {
          if (quitting || ws.readyState !== ws.OPEN) return;
          ws.send(options.binary ? encoder.encode(line) : line);
          lastSentAt = performance.now();
          waits = 0;
          armIdle();
        }
        if (quitting) return;
        if (!raw) log.info("EOF on stdin");
        if (!options.noClose) await closeWhenQuiet();
      } catch (error) {
        if (error instanceof LineTooLongError) {
          log.error(`Error: ${error.message}`);
          lineTooLong = true;
          await quit(null);
        } else if (!quitting) {
          throw error;
        }
      }
    })();
    pump.catch((error) => log.error(`Error reading stdin: ${error}`));

    await Promise.race([closed, onAbort]);
    const serverClosed = !quitting;
    await quit(null);
    if (lineTooLong) return 1;
    return !serverClosed || closeCode === 1000 || closeCode === 1001 ? 0 : 1;
  } finally {
    clearTimeout(idleTimer);
    clearTimeout(connectTimer);
    clearInterval(pingTimer);
  }
}

const spec = {
  name: "ws_client",
  summary: "Sends each stdin line as a WebSocket message and prints what comes back.",
  args: "SERVER PATH | URL",
  minArgs: 1,
  maxArgs: 2,
  options: {
    raw: {
      type: "boolean",
      description: "plain output even in a terminal: each message and a newline, nothing else",
    },
    "no-close": {
      type: "boolean",
      short: "n",
      description: "at the end of input do not close; wait for the server to close",
    },
    linger: {
      type: "string",
      arg: "DURATION",
      default: "1s",
      description: "at the end of input, close once the server was silent this long",
    },
    book: {
      type: "boolean",
      description: "the book's client: its look, idle prompts, and quitting when idle",
    },
    "idle-interval": {
      type: "string",
      arg: "DURATION",
      default: "4s",
      description: "with --book: ask for input after this much silence",
    },
    "idle-max": {
      type: "string",
      arg: "N",
      default: "6",
      description: "with --book: close after this many prompts (0 = never)",
    },
    binary: { type: "boolean", description: "send each line as a binary message" },
    header: {
      type: "string",
      short: "H",
      multiple: true,
      arg: "'NAME: VALUE'",
      description: "extra handshake header",
    },
    protocol: {
      type: "string",
      multiple: true,
      arg: "NAME",
      description: "sub-protocol to offer",
    },
    origin: { type: "string", arg: "URL", description: "send this Origin header" },
    "ping-interval": {
      type: "string",
      arg: "DURATION",
      description: "send a WebSocket ping this often (default never)",
    },
    "max-line": {
      type: "string",
      arg: "BYTES",
      default: "1048576",
      description: "longest stdin line",
    },
    "connect-timeout": {
      type: "string",
      arg: "DURATION",
      default: "10s",
      description: "give up connecting after this long",
    },
    ca: TLS_CLIENT_OPTIONS.ca,
    insecure: TLS_CLIENT_OPTIONS.insecure,
  },
  notes: `SERVER is HOST:PORT and PATH the path without its slash, as in the book
(ws_client localhost:1234 ws), or give one ws:// or wss:// URL.

When stdout is not a terminal (or with --raw) only the server's messages are
written, each followed by a newline; diagnostics go to stderr. In a terminal
messages print as the book's "YYYY/MM/DD HH:MM:SS Received: text". At the end of
input the client waits for a first answer to the last line (up to 10 s), then
until the server has been silent for --linger (or has closed), and closes with
1000 and exits 0. -n leaves the close to the server.

--book is the book's client, idle trap included: "Please give me input! N" after
each 4 s of silence on stdin, and after the 6th it quits with "Caught interrupt
signal - quitting!" (the book sends itself SIGINT).

Examples:
  ws_client localhost:1234 ws
  echo 100000 | ws_client ws://127.0.0.1:1234/ws | wc -l
  ws_client -H "Authorization: Bearer T" --protocol chat wss://example.com/socket
  ws_client --ca ca.pem wss://localhost:8443/ws           (see docs/tls.md)`,
} as const;

/** Runs the client; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values, positionals }) => {
    const { url, server, path } = parseTarget(positionals);
    const headers = parseHeaders(values.header, values.origin);
    const tls = tlsClientSettings(values);
    if (tls && url.protocol !== "wss:") {
      throw new UsageError(`--ca and --insecure need a wss:// URL, not "${url.href}"`);
    }
    // --book keeps the book's look even in a pipe; --raw always wins.
    const raw = values.raw || (!values.book && plainOutput(false));
    const options: WsClientOptions = {
      headers,
      protocols: values.protocol,
      raw,
      book: values.book,
      idleIntervalMs: parseDurationOption(values["idle-interval"], "idle-interval"),
      idleMax: parseIntOption(values["idle-max"], "idle-max"),
      noClose: values["no-close"],
      lingerMs: parseDurationOption(values.linger, "linger"),
      pingIntervalMs: values["ping-interval"] === undefined
        ? 0
        : parseDurationOption(values["ping-interval"], "ping-interval"),
      binary: values.binary,
      maxLineBytes: parseIntOption(values["max-line"], "max-line", { min: 1 }),
      connectTimeoutMs: parseDurationOption(values["connect-timeout"], "connect-timeout"),
      tls,
    };
    if (options.idleIntervalMs! <= 0) {
      throw new UsageError(`Invalid --idle-interval "${values["idle-interval"]}": must be > 0`);
    }
    if (!raw) printSync(`Connecting to: ${server} at ${path}\n`);
    return await runWsClient(url, options);
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
