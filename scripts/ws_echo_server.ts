#!/usr/bin/env -S deno run --v8-flags=--max-semi-space-size=2 --allow-net=0.0.0.0,127.0.0.1,localhost,[::],[::1] --allow-read
/**
 * ws_echo_server: the WebSocket echo server of seed 000 (and `/echo` of
 * seed 002). `/` answers `Welcome!\nPlease use /ws for WebSocket!`, `/ws`
 * and `/echo` echo every message with its type, `/client` serves a browser
 * page that talks to `/ws`. Logs `Connection from: ADDR`, `Received: text`
 * and each close code, as the seed does.
 *
 *     deno task ws_echo_server 1234
 *
 * @module
 */
import type { TlsCertificate } from "../lib/net/tls.ts";
import type { NetAddress } from "../lib/net/addr.ts";
import { runCommand } from "../lib/cli/cli.ts";
import { Logger } from "../lib/cli/log.ts";
import { listenOn } from "../lib/net/server.ts";
import { describeClose, OP_BINARY, OP_TEXT, type WsMessage } from "../lib/ws/ws_frame.ts";
import { WsServer, type WsServerOptions, type WsSocket } from "../lib/ws/ws_server.ts";
import { WS_SERVER_OPTIONS, wsServerOptions } from "../lib/ws/ws_options.ts";
import { ECHO_CLIENT_PAGE } from "../lib/ws/ws_echo_page.ts";
import { printReady, runServer, serverOptions, serverSettings } from "../lib/net/lifecycle.ts";

/** The book's answer to `/`. */
export const WELCOME = "Welcome!\nPlease use /ws for WebSocket!";
/** Paths that upgrade to the echo service. */
const ECHO_PATHS = new Set(["/ws", "/echo"]);

/** Options for {@link serveWsEcho}. */
export interface WsEchoOptions {
  /** Where to listen. Default `0.0.0.0:1234`. */
  address?: NetAddress;
  /** The engine's bounds and Origin policy. Default {@link WsServer}'s defaults. */
  guard?: WsServerOptions;
  /** Log nothing per connection or message. Default false. */
  quiet?: boolean;
  /** Aborting it closes every socket with 1001 and stops the server. */
  signal?: AbortSignal;
  /** Called once listening. Default prints the ready line. */
  onListen?: (addr: Deno.NetAddr) => void;
  /** Share the port with other workers (`SO_REUSEPORT`). Default false. */
  reusePort?: boolean;
  /** Added to connection logs when several workers serve the port, e.g. `worker 1`. */
  workerTag?: string;
  /** Serve https:// and wss:// with this certificate. Default plain. */
  tls?: TlsCertificate;
}

/** Starts the echo server and returns its handle. */
export async function serveWsEcho(options: WsEchoOptions = {}): Promise<WsServer> {
  const log = new Logger({ quiet: options.quiet });
  const tag = options.workerTag ? ` (${options.workerTag})` : "";
  const handlers = {
    onOpen: (client: WsSocket) => log.info(`Connection from: ${client.peer}${tag}`),
    onMessage: (client: WsSocket, message: WsMessage) => {
      if (!log.quiet) {
        log.info(
          message.binary
            ? `Received: ${message.payload.byteLength} bytes (binary)`
            // The log adds its own newline: a message's last one would show as an empty line.
            : `Received: ${message.text.replace(/\r?\n$/, "")}`,
        );
      }
      // The bytes as they came, with their type: no decoding and encoding again.
      client.send(message.payload, message.binary ? OP_BINARY : OP_TEXT);
    },
    onClose: (client: WsSocket, code: number, reason: string) =>
      log.info(
        `From ${client.peer} read websocket: close ${describeClose(code)}` +
          (reason ? ` ${reason}` : ""),
      ),
  };
  const address = options.address ?? { transport: "tcp", hostname: "0.0.0.0", port: 1234 };
  const listener = await listenOn(address, options.reusePort, options.tls);
  const server = new WsServer(listener, (request) => {
    const path = new URL(request.url).pathname;
    if (ECHO_PATHS.has(path)) return handlers;
    if (path === "/client") {
      return new Response(ECHO_CLIENT_PAGE, {
        headers: {
          "content-type": "text/html; charset=utf-8",
          "content-security-policy": "default-src 'self'; script-src 'unsafe-inline'; " +
            "style-src 'unsafe-inline'; connect-src 'self' ws: wss:",
        },
      });
    }
    return new Response(WELCOME, { headers: { "content-type": "text/plain; charset=utf-8" } });
  }, { ...options.guard, logger: options.guard?.logger ?? log, signal: options.signal });
  const tls = options.tls !== undefined;
  (options.onListen ?? ((addr) => printReady(addr, { protocol: "http", tls })))(server.addr);
  return server;
}

const spec = {
  name: "ws_echo_server",
  summary: "Echoes every WebSocket message on /ws and /echo; /client is a browser client.",
  args: "[ADDR]",
  options: {
    ...serverOptions(["quiet", "workers", "cert", "key"], {
      quiet: { description: "log nothing per connection or message" },
    }),
    ...WS_SERVER_OPTIONS,
  },
  notes: `ADDR is PORT, HOST:PORT or [IPv6]:PORT (default 1234).

Paths: / (welcome text), /ws and /echo (WebSocket echo), /client (browser page).
A handshake whose Origin names another host than the request's Host gets 403
unless --allow-origin allows it. SIGINT or SIGTERM closes every socket with 1001.

Examples:
  ws_echo_server 1234
  ws_client localhost:1234 ws
  ws_echo_server --allow-origin https://app.example.com 127.0.0.1:8080
  ws_echo_server --cert cert.pem --key key.pem 8443 & ws_client --ca ca.pem wss://localhost:8443/ws`,
} as const;

/** Runs the echo server until SIGINT or SIGTERM; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, ({ values, positionals }) => {
    const settings = serverSettings(values, positionals, { defaultPort: 1234 });
    const guard = wsServerOptions(values);
    return runServer(settings, (run) =>
      serveWsEcho({
        ...run,
        address: run.address as NetAddress,
        // --max-conns bounds the sockets of every worker together.
        guard: { ...guard, limit: run.limit },
        quiet: values.quiet,
        tls: settings.tls,
      }), { moduleUrl: import.meta.url, protocol: "http" });
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
