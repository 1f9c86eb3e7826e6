#!/usr/bin/env -S deno run --allow-net
/**
 * ws_client: the WebSocket client of seed 000. Each stdin line is sent as
 * a message and each message received prints as `YYYY/MM/DD HH:MM:SS
 * Received: text`; with no input for 4 s it asks `Please give me input! N`
 * and after the 6th time it closes with 1000; Ctrl-C sends close 1000 and
 * waits up to 2 s for the server's close. `--raw` suits pipes: no prompts,
 * no timestamps, and the end of stdin closes cleanly.
 *
 *     deno task ws_client localhost:1234 ws
 *     deno task ws_client wss://example.com/socket
 *
 * @module
 */
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
import { describeClose } from "../lib/ws/ws_guard.ts";
import { settledWithin } from "../lib/io/deadline.ts";
import { writeAllSync } from "../lib/io/print.ts";

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
const encoder = new TextEncoder();

/** Where the client writes; tests pass their own. */
export interface ClientOutput {
  /** Data: received messages and the `Connecting to` line. */
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
  /** Prompt after this much silence on stdin. Default 4000 ms. */
  idleIntervalMs?: number;
  /** Close after this many prompts; 0 never. Default 6. */
  idleMax?: number;
  /** Pipe mode: no prompts or timestamps; the end of stdin closes. Default false. */
  raw?: boolean;
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
  /** Aborting it acts as Ctrl-C. Default: SIGINT. */
  signal?: AbortSignal;
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

/** Parses `-H "Name: value"` options into headers, quoting a bad one. */
export function parseHeaders(values: string[], origin?: string): Headers {
  const headers = new Headers();
  for (const value of values) {
    const colon = value.indexOf(":");
    const name = colon > 0 ? value.slice(0, colon).trim() : "";
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      throw new UsageError(`Invalid -H "${value}": expected "Name: value"`);
    }
    try {
      headers.append(name, value.slice(colon + 1).trim());
    } catch {
      throw new UsageError(`Invalid -H "${value}": the value is not allowed in a header`);
    }
  }
  if (origin !== undefined) headers.set("origin", origin);
  return headers;
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

  const ws = new WebSocket(url, { headers: options.headers, protocols: options.protocols });
  ws.binaryType = "arraybuffer";
  let opened = false;
  let quitting = false;
  let failure = "";
  let closeCode = 0;
  let lineTooLong = false;
  let idleTimer: ReturnType<typeof setTimeout> | undefined;
  let connectTimer: ReturnType<typeof setTimeout> | undefined;
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
    failure ||= (event as ErrorEvent).message || "the connection failed";
  };
  ws.onmessage = (event) => {
    const data = event.data as string | ArrayBuffer;
    if (raw) {
      out.write(typeof data === "string" ? encoder.encode(data + "\n") : new Uint8Array(data));
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
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
      ws.close(1000);
    }
    await settledWithin(closed, CLOSE_WAIT_MS);
  };

  const interrupted = new AbortController();
  const onInterrupt = () => interrupted.abort();
  const signal = options.signal ?? interrupted.signal;
  if (!options.signal) Deno.addSignalListener("SIGINT", onInterrupt);
  const stopped = new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
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
        try {
          ws.close();
        } catch {
          // Never opened.
        }
        await settledWithin(closed, 100);
        return 1;
      }
      await onAbort;
      return 0;
    }

    let waits = 0;
    const armIdle = () => {
      clearTimeout(idleTimer);
      if (raw || quitting) return;
      idleTimer = setTimeout(() => {
        log.info(`Please give me input! ${waits}`);
        waits++;
        if (idleMax > 0 && waits >= idleMax) {
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
          if (quitting || ws.readyState !== WebSocket.OPEN) return;
          ws.send(options.binary ? encoder.encode(line) : line);
          waits = 0;
          armIdle();
        }
        if (raw) await quit(null);
        else if (!quitting) log.info("EOF on stdin");
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
    if (!options.signal) Deno.removeSignalListener("SIGINT", onInterrupt);
  }
}

const spec = {
  name: "ws_client",
  summary: "Sends each stdin line as a WebSocket message and prints what comes back.",
  args: "SERVER PATH | URL",
  minArgs: 1,
  maxArgs: 2,
  options: {
    "idle-interval": {
      type: "string",
      arg: "DURATION",
      default: "4s",
      description: "ask for input after this much silence",
    },
    "idle-max": {
      type: "string",
      arg: "N",
      default: "6",
      description: "close after this many prompts (0 = never)",
    },
    raw: {
      type: "boolean",
      description: "for pipes: no prompts, no timestamps; end of stdin closes",
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
  },
  notes: `SERVER is HOST:PORT and PATH the path without its slash, as in the book
(ws_client localhost:1234 ws), or give one ws:// or wss:// URL.

Examples:
  ws_client localhost:1234 ws
  ws_client --raw ws://127.0.0.1:1234/echo < messages.txt
  ws_client -H "Authorization: Bearer T" --protocol chat wss://example.com/socket`,
} as const;

/** Runs the client; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values, positionals }) => {
    const { url, server, path } = parseTarget(positionals);
    const headers = parseHeaders(values.header, values.origin);
    const options: WsClientOptions = {
      headers,
      protocols: values.protocol,
      idleIntervalMs: parseDurationOption(values["idle-interval"], "idle-interval"),
      idleMax: parseIntOption(values["idle-max"], "idle-max"),
      raw: values.raw,
      binary: values.binary,
      maxLineBytes: parseIntOption(values["max-line"], "max-line", { min: 1 }),
      connectTimeoutMs: parseDurationOption(values["connect-timeout"], "connect-timeout"),
    };
    if (options.idleIntervalMs! <= 0) {
      throw new UsageError(`Invalid --idle-interval "${values["idle-interval"]}": must be > 0`);
    }
    if (!values.raw) console.log(`Connecting to: ${server} at ${path}`);
    return await runWsClient(url, options);
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
