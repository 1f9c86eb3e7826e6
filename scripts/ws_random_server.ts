#!/usr/bin/env -S deno run --v8-flags=--max-semi-space-size=2 --allow-net=0.0.0.0,127.0.0.1,localhost,[::],[::1] --allow-read
/**
 * ws_random_server: exercise 5 of seed 000. A client's first message on
 * `/ws` is a count N (1..100000); the server sends N random integers, one
 * per message, then closes with 1000. A bad first message gets a text
 * error and close 1008. The stream follows the reader: it pauses while
 * more than 16 KiB wait to be written to the client, and a client that takes
 * nothing for the engine's write stall time (5 s) is dropped.
 *
 *     deno task ws_random_server 1234
 *
 * @module
 */
import type { TlsCertificate } from "../lib/net/tls.ts";
import type { NetAddress } from "../lib/net/addr.ts";
import { parseIntOption, runCommand, UsageError } from "../lib/cli/cli.ts";
import { Logger } from "../lib/cli/log.ts";
import { listenOn } from "../lib/net/server.ts";
import { printReady, runServer, serverOptions, serverSettings } from "../lib/net/lifecycle.ts";
import {
  CLOSE_NORMAL,
  CLOSE_POLICY,
  describeClose,
  OP_TEXT,
  type WsMessage,
} from "../lib/ws/ws_frame.ts";
import { WsServer, type WsServerOptions, type WsSocket } from "../lib/ws/ws_server.ts";
import { WS_SERVER_OPTIONS, wsServerOptions } from "../lib/ws/ws_options.ts";

/** Most integers one client may ask for. */
export const MAX_COUNT = 100_000;
/**
 * Pause the stream while this many bytes wait to be written: the client's
 * reading (the kernel taking our writes) sets the pace, and what one
 * client costs the server stays this small (each integer is a frame of
 * about 6 bytes).
 */
const HIGH_WATER_BYTES = 16 * 1024;

/** Options for {@link serveWsRandom}. */
export interface WsRandomOptions {
  /** Where to listen. Default `0.0.0.0:1234`. */
  address?: NetAddress;
  /** Smallest integer sent. Default 1. */
  min?: number;
  /** Largest integer sent. Default 1000. */
  max?: number;
  /** The engine's bounds and Origin policy. */
  guard?: WsServerOptions;
  /** Log nothing per connection. Default false. */
  quiet?: boolean;
  /** Aborting it closes every socket with 1001 and stops the server. */
  signal?: AbortSignal;
  /** Called once listening. Default prints the ready line. */
  onListen?: (addr: Deno.NetAddr) => void;
  /** Serve https:// and wss:// with this certificate. Default plain. */
  tls?: TlsCertificate;
}

/** Parses a client's count; returns an error message for anything but 1..100000. */
export function parseCount(data: string | Uint8Array): number | string {
  const text = typeof data === "string" ? data.trim() : "";
  if (!/^\d{1,6}$/.test(text) || Number(text) < 1 || Number(text) > MAX_COUNT) {
    const shown = typeof data === "string" ? JSON.stringify(data.slice(0, 40)) : "binary data";
    return `ERROR expected a count 1-${MAX_COUNT}, got ${shown}`;
  }
  return Number(text);
}

/**
 * Writes `n` as ASCII digits at the start of `into` (at least 11 bytes);
 * returns how many. Spares the stream a string and an encoded copy per
 * integer: ten clients asking for 100000 made a million of each.
 */
export function writeDecimal(n: number, into: Uint8Array): number {
  let length = 0;
  let rest = n;
  if (rest < 0) {
    into[length++] = 0x2d; // "-"
    rest = -rest;
  }
  const start = length;
  do {
    into[length++] = 0x30 + (rest % 10);
    rest = Math.floor(rest / 10);
  } while (rest > 0);
  for (let i = start, j = length - 1; i < j; i++, j--) {
    const digit = into[i];
    into[i] = into[j];
    into[j] = digit;
  }
  return length;
}

/** Sends `count` random integers in [min, max], pausing while the client lags. */
async function stream(client: WsSocket, count: number, min: number, max: number): Promise<void> {
  const span = max - min + 1;
  const digits = new Uint8Array(11); // -2147483648
  let sent = 0;
  while (sent < count) {
    while (sent < count && client.bufferedAmount < HIGH_WATER_BYTES) {
      const n = writeDecimal(min + Math.floor(Math.random() * span), digits);
      // send() copies the payload into the socket's batch or a new frame.
      if (!client.send(digits.subarray(0, n), OP_TEXT)) return;
      sent++;
    }
    await client.flushed();
    if (!client.open) return;
  }
  client.close(CLOSE_NORMAL, "done");
}

/** Starts the random-integer server and returns its handle. */
export async function serveWsRandom(options: WsRandomOptions = {}): Promise<WsServer> {
  const log = new Logger({ quiet: options.quiet });
  const min = options.min ?? 1;
  const max = options.max ?? 1000;
  const started = new WeakSet<WsSocket>();
  const handlers = {
    onOpen: (client: WsSocket) => log.info(`Connection from: ${client.peer}`),
    onMessage: (client: WsSocket, message: WsMessage) => {
      if (started.has(client)) return; // the count came; later messages change nothing
      started.add(client);
      const count = parseCount(message.data);
      if (typeof count === "string") {
        log.info(`${client.peer}: ${count}`);
        client.send(count);
        client.close(CLOSE_POLICY, "bad count");
        return;
      }
      log.info(`Sending ${count} random integers to ${client.peer}`);
      stream(client, count, min, max).catch((error) => {
        log.error(`${client.peer}: ${error}`);
        client.close(1011, "server error");
      });
    },
    onClose: (client: WsSocket, code: number, reason: string) =>
      log.info(`From ${client.peer}: close ${describeClose(code)}${reason ? ` ${reason}` : ""}`),
  };
  const address = options.address ?? { transport: "tcp", hostname: "0.0.0.0", port: 1234 };
  const listener = await listenOn(address, false, options.tls);
  const server = new WsServer(listener, (request) => {
    if (new URL(request.url).pathname === "/ws") return handlers;
    return new Response(
      `Welcome!\nOpen a WebSocket on /ws and send a count 1-${MAX_COUNT}.\n`,
      { headers: { "content-type": "text/plain; charset=utf-8" } },
    );
  }, { ...options.guard, logger: options.guard?.logger ?? log, signal: options.signal });
  const tls = options.tls !== undefined;
  (options.onListen ?? ((addr) => printReady(addr, { protocol: "http", tls })))(server.addr);
  return server;
}

const spec = {
  name: "ws_random_server",
  summary: "Sends as many random integers as a WebSocket client's first message asks for.",
  args: "[ADDR]",
  options: {
    ...serverOptions(["quiet", "cert", "key"]),
    min: { type: "string", arg: "N", default: "1", description: "smallest integer" },
    max: { type: "string", arg: "N", default: "1000", description: "largest integer" },
    ...WS_SERVER_OPTIONS,
  },
  notes: `ADDR is PORT, HOST:PORT or [IPv6]:PORT (default 1234).

Protocol: open ws://HOST:PORT/ws and send a count N (1-${MAX_COUNT}) as text; N text
messages follow, each one integer, then a close with 1000. Anything else as the
first message gets "ERROR ..." and a close with 1008.

Example:
  ws_random_server 1234 &
  echo 5 | ws_client --raw ws://localhost:1234/ws`,
} as const;

/** Runs the server until SIGINT or SIGTERM; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, ({ values, positionals }) => {
    const settings = serverSettings(values, positionals, { defaultPort: 1234 });
    const limit = { min: -(2 ** 31), max: 2 ** 31 - 1 };
    const min = parseIntOption(values.min, "min", limit);
    const max = parseIntOption(values.max, "max", limit);
    if (min > max) throw new UsageError(`Invalid --min "${min}": above --max "${max}"`);
    const guard = wsServerOptions(values);
    return runServer(settings, (run) =>
      serveWsRandom({
        address: run.address as NetAddress,
        min,
        max,
        guard: { ...guard, limit: run.limit },
        quiet: values.quiet,
        signal: run.signal,
        onListen: run.onListen,
        tls: settings.tls,
      }), { moduleUrl: import.meta.url, protocol: "http" });
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
