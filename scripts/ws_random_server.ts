#!/usr/bin/env -S deno run --allow-net=0.0.0.0,127.0.0.1,localhost,[::],[::1] --allow-read
/**
 * ws_random_server: exercise 5 of seed 000. A client's first message on
 * `/ws` is a count N (1..100000); the server sends N random integers, one
 * per message, then closes with 1000. A bad first message gets a text
 * error and close 1008. The stream follows the reader: it pauses while the
 * client has more than 256 KiB unread, and drops a client that reads
 * nothing for the idle timeout.
 *
 *     deno task ws_random_server 1234
 *
 * @module
 */
import type { TlsCertificate } from "../lib/net/tls.ts";
import type { NetAddress } from "../lib/net/addr.ts";
import { parseIntOption, runCommand, UsageError } from "../lib/cli/cli.ts";
import { Logger } from "../lib/cli/log.ts";
import { type HttpServer, serveHttp } from "../lib/net/serve_http.ts";
import { runServer, serverOptions, serverSettings } from "../lib/net/lifecycle.ts";
import {
  CLOSE_NORMAL,
  CLOSE_POLICY,
  describeClose,
  type GuardedSocket,
  WsGuard,
  type WsGuardOptions,
} from "../lib/ws/ws_guard.ts";
import { WS_SERVER_OPTIONS, wsGuardOptions } from "../lib/ws/ws_options.ts";

/** Most integers one client may ask for. */
export const MAX_COUNT = 100_000;
/** Integers sent between checks of the client's unread bytes. */
const BATCH = 256;
/** Pause the stream while the client has more than this unread. */
const LOW_WATER_BYTES = 256 * 1024;
/** How often a paused stream looks again. */
const POLL_MS = 5;

/** Options for {@link serveWsRandom}. */
export interface WsRandomOptions {
  /** Where to listen. Default `0.0.0.0:1234`. */
  address?: NetAddress;
  /** Smallest integer sent. Default 1. */
  min?: number;
  /** Largest integer sent. Default 1000. */
  max?: number;
  /** The guard's bounds and Origin policy. */
  guard?: WsGuardOptions;
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
export function parseCount(data: string | ArrayBuffer): number | string {
  const text = typeof data === "string" ? data.trim() : "";
  if (!/^\d{1,6}$/.test(text) || Number(text) < 1 || Number(text) > MAX_COUNT) {
    const shown = typeof data === "string" ? JSON.stringify(data.slice(0, 40)) : "binary data";
    return `ERROR expected a count 1-${MAX_COUNT}, got ${shown}`;
  }
  return Number(text);
}

/** Sends `count` random integers in [min, max], pausing while the client lags. */
async function stream(
  client: GuardedSocket,
  count: number,
  min: number,
  max: number,
  stallMs: number,
): Promise<void> {
  const span = max - min + 1;
  let sent = 0;
  while (sent < count) {
    const end = Math.min(count, sent + BATCH);
    for (; sent < end; sent++) {
      if (!client.send(String(min + Math.floor(Math.random() * span)))) return;
    }
    const since = Date.now();
    while (client.open && client.socket.bufferedAmount > LOW_WATER_BYTES) {
      if (stallMs > 0 && Date.now() - since > stallMs) {
        client.close(CLOSE_POLICY, "too slow: nothing read for too long");
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    if (!client.open) return;
  }
  client.close(CLOSE_NORMAL, "done");
}

/** Starts the random-integer server and returns its handle. */
export function serveWsRandom(options: WsRandomOptions = {}): HttpServer {
  const log = new Logger({ quiet: options.quiet });
  const guard = new WsGuard({ ...options.guard, logger: options.guard?.logger ?? log });
  const min = options.min ?? 1;
  const max = options.max ?? 1000;
  const started = new WeakSet<GuardedSocket>();
  const handlers = {
    onOpen: (client: GuardedSocket) => log.info(`Connection from: ${client.peer}`),
    onMessage: (client: GuardedSocket, data: string | ArrayBuffer) => {
      if (started.has(client)) return; // the count came; later messages change nothing
      started.add(client);
      const count = parseCount(data);
      if (typeof count === "string") {
        log.info(`${client.peer}: ${count}`);
        client.send(count);
        client.close(CLOSE_POLICY, "bad count");
        return;
      }
      log.info(`Sending ${count} random integers to ${client.peer}`);
      stream(client, count, min, max, guard.idleTimeoutMs).catch((error) => {
        log.error(`${client.peer}: ${error}`);
        client.close(1011, "server error");
      });
    },
    onClose: (client: GuardedSocket, code: number, reason: string) =>
      log.info(`From ${client.peer}: close ${describeClose(code)}${reason ? ` ${reason}` : ""}`),
  };
  return serveHttp((request, info) => {
    const path = new URL(request.url).pathname;
    if (path === "/ws") return guard.upgrade(request, info, handlers);
    return new Response(
      `Welcome!\nOpen a WebSocket on /ws and send a count 1-${MAX_COUNT}.\n`,
      { headers: { "content-type": "text/plain; charset=utf-8" } },
    );
  }, {
    address: options.address ?? { transport: "tcp", hostname: "0.0.0.0", port: 1234 },
    signal: options.signal,
    beforeShutdown: () => guard.closeAll(),
    logger: log,
    onListen: options.onListen,
    tls: options.tls,
  });
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
    const guard = wsGuardOptions(values);
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
