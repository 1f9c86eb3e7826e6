#!/usr/bin/env -S deno run --v8-flags=--max-semi-space-size=2 --allow-net=0.0.0.0,127.0.0.1,localhost,[::],[::1] --allow-read
/**
 * ws_chat_server: gorilla/websocket's chat room (seed 004) and seed 001's
 * TCP chat in one room. `/` serves the chat page, `/ws?name=NAME` joins
 * over WebSocket, and `--tcp-port` (8081) lets terminal users join with
 * `nc` or `tcp_chat_client`; everyone talks through one hub.
 *
 *     deno task start            # then open http://localhost:8080
 *     nc localhost 8081          # the same room from a terminal
 *
 * @module
 */
import type { TlsCertificate } from "../lib/net/tls.ts";
import { type NetAddress, parsePort } from "../lib/net/addr.ts";
import { BUS_OPTIONS, busConfig, connectBus } from "../lib/chat/chat_bus.ts";
import { CHAT_CSS, CHAT_HTML, CHAT_JS } from "../lib/chat/chat_page.ts";
import {
  ROOM_OPTIONS,
  roomOptions,
  TCP_CHAT_OPTIONS,
  tcpChatOptions,
} from "../lib/chat/chat_cli.ts";
import { runCommand, usage } from "../lib/cli/cli.ts";
import {
  ChatHub,
  type HubOptions,
  type LeaveReason,
  type Member,
  type MemberSink,
} from "../lib/chat/hub.ts";
import { Logger } from "../lib/cli/log.ts";
import { listenOn, type TcpServer } from "../lib/net/server.ts";
import { closeRoom, serveTcpChat, type TcpChatOptions } from "../lib/chat/tcp_chat.ts";
import { readyLine, runServer, serverOptions, serverSettings } from "../lib/net/lifecycle.ts";
import { CLOSE_POLICY, type WsMessage } from "../lib/ws/ws_frame.ts";
import { parseAllowedOrigins } from "../lib/ws/ws_http.ts";
import {
  type WsHandlers,
  WsServer,
  type WsServerOptions,
  type WsSocket,
} from "../lib/ws/ws_server.ts";

/** Unwritten bytes a member's socket may hold before the hub queues for it instead. */
const HANDOFF_BYTES = 16 * 1024;
/** Longest close reason a WebSocket close frame carries, in bytes. */
const MAX_CLOSE_REASON_BYTES = 123;
const encoder = new TextEncoder();

/** Options for {@link serveWsChat}. */
export interface WsChatOptions {
  /** Where the page and `/ws` listen. Default `0.0.0.0:8080`. */
  address?: NetAddress;
  /** Where the TCP side listens; null for none. Default `0.0.0.0:8081`. */
  tcpAddress?: NetAddress | null;
  /** The room's bounds. Default the hub's. */
  room?: HubOptions;
  /** The TCP side's timeouts and bounds. */
  tcp?: TcpChatOptions;
  /** The WebSocket side's Origin policy, ping/idle timeout and socket bound. */
  guard?: Pick<WsServerOptions, "allowOrigins" | "idleTimeoutMs" | "maxSockets" | "limit">;
  /** Log no joins and leaves. Default false. */
  quiet?: boolean;
  /** Aborting it tells everyone, closes every connection and stops. */
  signal?: AbortSignal;
  /** Share the HTTP port with other workers (`SO_REUSEPORT`). Default false. */
  reusePort?: boolean;
  /** Names this worker in join and leave logs when several serve the port. Default none. */
  workerTag?: string;
  /** Serve the page over https://, the room over wss:// and the TCP side over TLS. Default plain. */
  tls?: TlsCertificate;
}

/** A running chat server: the room, its HTTP/WebSocket side and its TCP side. */
export interface WsChatServer extends AsyncDisposable {
  hub: ChatHub;
  /** Where the page and `/ws` listen. */
  addr: Deno.NetAddr;
  /** Where the TCP side listens, if it does. */
  tcpAddr: Deno.NetAddr | null;
  /** Resolves once everything has stopped. */
  finished: Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * The Content-Security-Policy of the page: its own scripts and styles only,
 * and connections only to its own socket (named with the request's host,
 * for browsers whose `'self'` does not cover `ws:`).
 */
export function contentSecurityPolicy(host: string | null): string {
  const safeHost = host && /^[\w.-]+(:\d+)?$|^\[[\d:a-fA-F.]+\](:\d+)?$/.test(host) ? host : null;
  const sockets = safeHost ? ` ws://${safeHost} wss://${safeHost}` : "";
  return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
    `connect-src 'self'${sockets}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`;
}

function truncateReason(text: string): string {
  const bytes = encoder.encode(text);
  if (bytes.byteLength <= MAX_CLOSE_REASON_BYTES) return text;
  return new TextDecoder().decode(bytes.subarray(0, MAX_CLOSE_REASON_BYTES - 3)).replace(
    /\uFFFD$/,
    "",
  ) + "...";
}

/**
 * One WebSocket member: the engine's handlers and the hub's sink in one
 * object, so that an idle member costs one object rather than two and six
 * closures. It joins the hub when the socket opens.
 */
class WsMember implements WsHandlers, MemberSink {
  readonly format = "json";
  #hub: ChatHub;
  #log: Logger;
  #name: string;
  #client: WsSocket | null = null;
  #member: Member | null = null;

  constructor(hub: ChatHub, log: Logger, name: string) {
    this.#hub = hub;
    this.#log = log;
    this.#name = name;
  }

  write(data: Uint8Array): Promise<void> | void {
    const client = this.#client;
    // Binary frames of UTF-8 JSON, as the page expects (docs/chat.md). The
    // engine packs frames sent while a write is on into its next write;
    // past a few KiB the hub holds the rest (bounded, and it says so when
    // it drops a member that stopped reading).
    if (!client?.send(data)) return;
    return client.bufferedAmount > HANDOFF_BYTES ? client.flushed() : undefined;
  }

  close(reason: LeaveReason): void {
    this.#client?.close(CLOSE_POLICY, `${reason}: fell too far behind`);
  }

  onOpen(client: WsSocket): void {
    this.#client = client;
    try {
      this.#member = this.#hub.join(this.#name, this);
    } catch (error) {
      if (!(error instanceof Error)) throw error;
      const now = Date.now();
      client.send(JSON.stringify({ type: "notice", level: "error", ts: now, text: error.message }));
      client.close(CLOSE_POLICY, truncateReason(error.message));
    }
  }

  onMessage(client: WsSocket, message: WsMessage): void {
    const member = this.#member;
    if (!member) {
      this.#log.error(`${client.peer}: message before joining, dropped`);
      return;
    }
    if (message.binary) {
      this.#hub.notify(member, "Binary messages are not supported: send text", "error");
      return;
    }
    const text = message.text;
    if (text.trim() === "/who") this.#hub.who(member);
    else this.#hub.broadcast(member, text);
  }

  onClose(_client: WsSocket, code: number): void {
    const member = this.#member;
    this.#member = null;
    if (member) this.#hub.leave(member, code === 1000 || code === 1001 ? "quit" : "disconnected");
  }
}

/** Starts the room with its page, its WebSocket endpoint and its TCP side. */
export async function serveWsChat(options: WsChatOptions = {}): Promise<WsChatServer> {
  const log = new Logger({ quiet: options.quiet });
  const tag = options.workerTag ? ` (${options.workerTag})` : "";
  const hub = new ChatHub({ ...options.room, onLog: (line) => log.info(line + tag) });
  const maxMessageBytes = hub.maxMessageBytes;
  const maxQueueBytes = options.room?.maxQueueBytes ?? 256 * 1024;
  const wsOptions: WsServerOptions = {
    ...options.guard,
    maxMessageBytes,
    // The hub drops a slow member at its own bound first, announcing it.
    maxBufferedBytes: maxQueueBytes * 2,
    logger: log,
  };
  const page = CHAT_HTML.replace(
    '<html lang="en">',
    `<html lang="en" data-max-message="${maxMessageBytes}">`,
  );

  const wsMember = (name: string) => new WsMember(hub, log, name);

  const route = (request: Request): Response | WsHandlers => {
    const url = new URL(request.url);
    const headers = (type: string) => ({
      "content-type": type,
      "content-security-policy": contentSecurityPolicy(request.headers.get("host")),
      "x-content-type-options": "nosniff",
      "cache-control": "no-cache",
    });
    switch (url.pathname) {
      case "/":
        return new Response(page, { headers: headers("text/html; charset=utf-8") });
      case "/chat.js":
        return new Response(CHAT_JS, { headers: headers("text/javascript; charset=utf-8") });
      case "/chat.css":
        return new Response(CHAT_CSS, { headers: headers("text/css; charset=utf-8") });
      case "/ws":
        return wsMember(url.searchParams.get("name") ?? "");
      default:
        return new Response("Not Found\n", { status: 404, headers: headers("text/plain") });
    }
  };

  const address = options.address ?? { transport: "tcp", hostname: "0.0.0.0", port: 8080 };
  const listener = await listenOn(address, options.reusePort, options.tls);
  const ws = new WsServer(listener, route, wsOptions);
  const controller = new AbortController();
  let tcp: TcpServer | null = null;
  try {
    const tcpAddress = options.tcpAddress === undefined
      ? { transport: "tcp" as const, hostname: "0.0.0.0", port: 8081 }
      : options.tcpAddress;
    if (tcpAddress) {
      tcp = await serveTcpChat(hub, {
        ...options.tcp,
        address: tcpAddress,
        tls: options.tls,
        logger: log,
        signal: controller.signal,
        onListen: () => {},
      });
    }
  } catch (error) {
    await ws.shutdown();
    throw error;
  }

  let stopping: Promise<void> | null = null;
  const shutdown = () =>
    stopping ??= (async () => {
      await closeRoom(hub);
      controller.abort();
      await ws.shutdown();
      await tcp?.finished;
    })();
  if (options.signal?.aborted) shutdown();
  options.signal?.addEventListener("abort", shutdown, { once: true });
  const finished = ws.finished.then(() => stopping ?? undefined).then(() => tcp?.finished);
  return {
    hub,
    addr: ws.addr,
    tcpAddr: (tcp?.addr as Deno.NetAddr | undefined) ?? null,
    finished: finished.then(() => {}),
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}

const spec = {
  name: "ws_chat_server",
  summary: "A chat room for browsers (WebSocket) and terminals (TCP) in one hub.",
  args: "",
  maxArgs: 0,
  options: {
    ...serverOptions(["max-conns", "idle-timeout", "quiet", "workers", "cert", "key"], {
      port: { default: "8080", description: "HTTP port" },
      "idle-timeout": {
        default: "60s",
        description: "ping silent WebSocket peers, close those that stay silent (0 = never)",
      },
      quiet: { description: "log no joins and leaves" },
    }),
    "tcp-port": {
      type: "string",
      arg: "PORT",
      default: "8081",
      description: "TCP port for nc and tcp_chat_client (off = none)",
    },
    "allow-origin": {
      type: "string",
      multiple: true,
      arg: "URL",
      description: "also accept WebSocket handshakes from this Origin, or '*' for any",
    },
    ...TCP_CHAT_OPTIONS,
    ...ROOM_OPTIONS,
    ...BUS_OPTIONS,
  },
  notes: `Open http://localhost:8080 in a browser; join from a terminal with
nc localhost 8081 (first line: your nickname; /who, /nick NAME, /quit).

WebSocket protocol: /ws?name=NAME; send text frames (at most --max-message
bytes, larger closes with 1009); receive JSON objects, one per line (a
frame holds one or, when the socket was busy, several, newline-separated):
  {"type":"welcome","name":"alice","requested":"alice","members":[...],"count":3,...}
  {"type":"message","time":"2006-01-02 15:04:05","ts":...,"name":"bob","text":"hi"}
  {"type":"presence","changes":[{"event":"join","name":"carol"}],"count":3,...}
  {"type":"notice","level":"error","text":"Slow down: ...",...}
  {"type":"members","members":[...],"offset":0,"count":3,"end":true,...}   (answers /who)
The welcome lists the first names up to about 512 bytes and an announcement
the changes up to that size, counting the rest in "more":{"joined":N,...};
send the text /who for everyone in the room, in pieces of about 2 KiB (at
most 64 KiB in all), the last with "end":true.
A handshake whose Origin names another host than the request's Host gets 403
unless --allow-origin allows it.

With --workers N, N threads serve the page and /ws on one port and form one
room; the TCP side is served by the first. With --bus, servers that share a
RabbitMQ exchange and --room form one room (each worker joins it); if the
broker goes away, each keeps its own members talking, tells them the room is
local-only, and rejoins when the broker is back.

With --cert FILE --key FILE the page is served over https://, the room over
wss:// and the TCP side over TLS (ncat --ssl, tcp_chat_client --ca); see docs/tls.md.`,
} as const;

/** Runs the chat server until SIGINT or SIGTERM; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, ({ values, positionals }) => {
    const settings = serverSettings(values, positionals, { defaultPort: 8080 });
    const tcpAddress = values["tcp-port"] === "off" ? null : {
      transport: "tcp" as const,
      hostname: (settings.address as NetAddress).hostname,
      port: usage(() => parsePort(values["tcp-port"], "--tcp-port")),
    };
    const tcp = tcpChatOptions(values);
    const room = roomOptions(values);
    const allowOrigins = usage(() => parseAllowedOrigins(values["allow-origin"]));
    const bus = busConfig(values);
    const log = new Logger({ quiet: values.quiet });
    return runServer(settings, async (run) => {
      const chat = await serveWsChat({
        room,
        // --max-conns bounds every connection of the process, WebSocket and TCP alike.
        tcp: { ...tcp, limit: run.limit },
        guard: {
          allowOrigins,
          idleTimeoutMs: settings.idleTimeoutMs,
          maxSockets: settings.maxConns,
          limit: run.limit,
        },
        quiet: values.quiet,
        address: run.address as NetAddress,
        // One TCP side per server: the first thread's (the rest share the room).
        tcpAddress: run.worker === 0 ? tcpAddress : null,
        reusePort: run.reusePort,
        workerTag: run.workerTag,
        signal: run.signal,
        tls: settings.tls,
      });
      const link = await connectBus(chat.hub, { ...bus, onLog: (l) => log.error(l) }, {
        workers: settings.workers,
        port: chat.addr.port,
      }).catch(async (error) => {
        await chat.shutdown();
        throw error;
      });
      // After the hub's own listener: the hub closes, then the bus says goodbye.
      run.signal.addEventListener("abort", () => link?.close(), { once: true });
      return {
        addr: chat.addr,
        tcpAddr: chat.tcpAddr,
        finished: chat.finished.then(() => link?.close()),
      };
    }, {
      moduleUrl: import.meta.url,
      protocol: "http",
      moreReadyLines: ({ tcpAddr }) =>
        tcpAddr
          ? [readyLine(tcpAddr, { note: "chat over TCP", tls: settings.tls !== undefined })]
          : [],
    });
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
