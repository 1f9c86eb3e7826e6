#!/usr/bin/env -S deno run --v8-flags=--max-semi-space-size=2 --allow-net=0.0.0.0,127.0.0.1,localhost,[::],[::1] --allow-read
/**
 * tcp_chat_server: seed 001's chat room over TCP, friendly to `nc`. The
 * first line is your nickname, every other line goes to the room as
 * `2006-01-02 15:04:05 NAME: text`; `/who`, `/nick NAME`, `/quit`, and
 * `/ping` (answered `/pong`) as the heartbeat: a member that pings and then
 * stays silent for 5 s is removed and announced as timed out.
 *
 *     deno task tcp_chat_server 8086
 *     nc localhost 8086
 *
 * @module
 */
import { BUS_OPTIONS, busConfig, connectBus } from "../lib/chat/chat_bus.ts";
import {
  ROOM_OPTIONS,
  roomOptions,
  TCP_CHAT_OPTIONS,
  tcpChatOptions,
} from "../lib/chat/chat_cli.ts";
import { runCommand } from "../lib/cli/cli.ts";
import { ChatHub, type HubOptions } from "../lib/chat/hub.ts";
import { Logger } from "../lib/cli/log.ts";
import type { TcpServer } from "../lib/net/server.ts";
import { runServer, serverOptions, serverSettings } from "../lib/net/lifecycle.ts";
import { closeRoom, serveTcpChat, type TcpChatOptions } from "../lib/chat/tcp_chat.ts";

/** Options for {@link serveChat}. */
export interface ChatServerOptions extends TcpChatOptions {
  /** The room's bounds (queue, rate, message size). Default the hub's defaults. */
  room?: HubOptions;
  /** Print no joins and leaves. Default false. */
  quiet?: boolean;
}

/** A running TCP chat server: its room and its listener. */
export interface ChatServer extends AsyncDisposable {
  hub: ChatHub;
  server: TcpServer;
  /** Where it listens. */
  readonly addr: Deno.Addr;
  /** Resolves once the room has closed and every connection has ended. */
  readonly finished: Promise<void>;
  /** Tells everyone the server is going, then stops. */
  shutdown(): Promise<void>;
}

/** Starts the room and its TCP listener. */
export async function serveChat(options: ChatServerOptions = {}): Promise<ChatServer> {
  const logger = options.logger ?? new Logger({ quiet: options.quiet });
  const hub = new ChatHub({ ...options.room, onLog: (line) => logger.info(line) });
  const controller = new AbortController();
  const stop = async () => {
    await closeRoom(hub);
    controller.abort();
  };
  options.signal?.addEventListener("abort", stop, { once: true });
  const server = await serveTcpChat(hub, { ...options, logger, signal: controller.signal });
  const shutdown = async () => {
    await stop();
    await server.finished;
  };
  return {
    hub,
    server,
    addr: server.addr,
    finished: server.finished,
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}

const spec = {
  name: "tcp_chat_server",
  summary: "A chat room over TCP: the first line is your nickname, then every line is a message.",
  args: "[ADDR]",
  options: {
    ...serverOptions(["max-conns", "quiet", "cert", "key"], {
      quiet: { description: "log no joins and leaves" },
    }),
    ...TCP_CHAT_OPTIONS,
    ...ROOM_OPTIONS,
    ...BUS_OPTIONS,
  },
  notes: `ADDR is PORT, HOST:PORT or [IPv6]:PORT (default 8086, as seed 001).

With --bus, servers that share a RabbitMQ exchange and --room form one room:
each one's members see the others' messages, joins and leaves, and /who lists
everyone. If the broker goes away each server keeps its own members talking,
tells them the room is local-only, and rejoins when the broker is back.

Protocol (one line each way): your first line is your nickname (or /nick NAME);
then each line is a message. Commands: /nick NAME, /who, /quit, /ping (answered
/pong), /help; //text sends a message that starts with "/". The room's lines:
  2006-01-02 15:04:05 alice: hello
  2006-01-02 15:04:05 * bob joined
  ERROR Message too long: 600 bytes, the limit is 512

Examples:
  tcp_chat_server 8086 & nc localhost 8086
  tcp_chat_server --cert cert.pem --key key.pem 8086 & ncat --ssl localhost 8086`,
} as const;

/** Runs the chat server until SIGINT or SIGTERM; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, ({ values, positionals }) => {
    const tcp = tcpChatOptions(values);
    const settings = serverSettings(values, positionals, { defaultPort: 8086 });
    const room = roomOptions(values);
    const bus = busConfig(values);
    const logger = new Logger({ quiet: values.quiet });
    return runServer(settings, async (run) => {
      const chat = await serveChat({
        ...tcp,
        ...run,
        tls: settings.tls,
        room,
        logger,
        quiet: values.quiet,
      });
      // Joined (or trying to) before the ready line, so the room spans servers from the start.
      const link = await connectBus(chat.hub, { ...bus, onLog: (l) => logger.error(l) }, {
        workers: 1,
        port: 0,
      }).catch(async (error) => {
        await chat.shutdown();
        throw error;
      });
      // After the hub's own listener: the hub closes, then the bus says goodbye.
      run.signal.addEventListener("abort", () => link?.close(), { once: true });
      return { addr: chat.addr, finished: chat.finished.then(() => link?.close()) };
    }, { moduleUrl: import.meta.url });
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
