/**
 * The chat room over TCP, seed 001's protocol made friendly to `nc`: the
 * first line is the nickname (or `/nick NAME`), other lines are messages,
 * and the room's lines look like `2006-01-02 15:04:05 NAME: text`.
 * Commands: `/nick NAME`, `/who`, `/quit`, `/ping` (answered `/pong`, the
 * heartbeat), `/help`; `//text` sends a message that starts with `/`.
 *
 * A member that has sent `/ping` is held to the heartbeat timeout (5 s, as
 * in the seed); one that never did (a person on `nc`) only to the idle
 * timeout. Either is removed and announced as timed out.
 *
 * Used by `tcp_chat_server` and by `ws_chat_server --tcp-port`.
 *
 * @module
 */
import type { Address } from "../net/addr.ts";
import { checkName, escapeControls, NameError } from "./chat_text.ts";
import { type ChatHub, type Member, onlineText } from "./hub.ts";
import { LineReader, LineTooLongError } from "../io/lines.ts";
import { Logger } from "../cli/log.ts";
import { settledWithin } from "../io/deadline.ts";
import type { ConnectionLimit } from "../net/workers.ts";
import { serveTcp, type Session, type TcpServer } from "../net/server.ts";

/** Seed 001's heartbeat expiry. */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 5_000;
/** A member that never sends `/ping` (someone typing on `nc`) may stay silent this long. */
export const DEFAULT_IDLE_TIMEOUT_MS = 10 * 60_000;
/** Longest line the framing accepts; longer ones close the connection (messages stop at 512 bytes). */
export const DEFAULT_MAX_LINE_BYTES = 4096;
/** The first line a connection receives. */
export const PROMPT = "* Welcome to the chat. Type your nickname (or /nick NAME):\n";
const HELP =
  "* Commands: /nick NAME, /who, /quit, /ping, /help; //text sends a line starting with /";
/** How long a closing connection may take to write what is still queued for it. */
const FLUSH_ON_CLOSE_MS = 1_000;
const encoder = new TextEncoder();
const PONG = encoder.encode("/pong\n");

/** Options for {@link serveTcpChat}. */
export interface TcpChatOptions {
  /** Where to listen. Default `0.0.0.0:8081`. */
  address?: Address;
  /** Remove a member that sent `/ping` and then nothing for this long. Default 5000 ms. */
  heartbeatTimeoutMs?: number;
  /** Remove a member that never sent `/ping` after this much silence; 0 never. Default 10 min. */
  idleTimeoutMs?: number;
  /** Longest line in bytes; a longer one closes the connection. Default 4096. */
  maxLineBytes?: number;
  /** Most simultaneous connections. Default 10000. */
  maxConns?: number;
  /** The process's bound on connections (all ports, all workers); replaces `maxConns`. Default none. */
  limit?: ConnectionLimit;
  /** Aborting it shuts the server down. */
  signal?: AbortSignal;
  /** Diagnostics. Default a Logger on stderr. */
  logger?: Logger;
  /** Called once listening. Default prints the ready line. */
  onListen?: (addr: Deno.Addr) => void;
}

/** One TCP connection: before its nickname it talks to the socket, after it through the hub. */
class Connection {
  member: Member | null = null;
  /** Whether the peer speaks the heartbeat (has sent `/ping`). */
  heartbeat = false;
  timedOut = false;
  readonly session: Session;
  #hub: ChatHub;

  constructor(session: Session, hub: ChatHub) {
    this.session = session;
    this.#hub = hub;
  }

  /** Sends a line: straight to the socket before joining, through the member's queue after. */
  async say(text: string): Promise<void> {
    if (this.member) this.#hub.sendRaw(this.member, encoder.encode(text + "\n"));
    else await this.session.writeAll(text + "\n");
  }

  /** Handles one line; false once the connection should end. */
  async line(line: string): Promise<boolean> {
    const hub = this.#hub;
    const command = /^\/(\w+)(?:\s+(.*))?$/.exec(line.trim());
    if (line.startsWith("//")) {
      line = line.slice(1);
    } else if (command) {
      const [, verb, arg = ""] = command;
      switch (verb) {
        case "ping":
          this.heartbeat = true;
          if (this.member) hub.sendRaw(this.member, PONG);
          else await this.session.writeAll(PONG);
          return true;
        case "quit":
          if (this.member) hub.leave(this.member, "quit");
          this.member = null;
          await this.session.closeWith("* Bye\n");
          return false;
        case "who":
          if (this.member) hub.who(this.member);
          else await this.session.writeAll(`* ${onlineText(hub.names())}\n`);
          return true;
        case "help":
          await this.say(HELP);
          return true;
        case "nick":
          return await this.#nick(arg);
        default:
          await this.say(`ERROR Unknown command "/${escapeControls(verb)}": try /help`);
          return true;
      }
    }
    if (!this.member) return await this.#nick(line);
    hub.broadcast(this.member, line);
    return true;
  }

  async #nick(name: string): Promise<boolean> {
    try {
      if (this.member) {
        const given = this.#hub.rename(this.member, name);
        const wanted = checkName(name);
        if (given !== wanted) this.#hub.notify(this.member, `"${wanted}" is taken`);
      } else {
        this.member = this.#hub.join(name, this.#sink(), { echo: false });
      }
    } catch (error) {
      if (!(error instanceof NameError)) throw error;
      await this.say(`ERROR ${error.message}`);
    }
    return true;
  }

  #sink() {
    const session = this.session;
    return {
      format: "line" as const,
      write: (data: Uint8Array) => session.writeAll(data),
      close: () => session.close(),
    };
  }
}

/**
 * Closes the room and gives the members' last notice up to a second to
 * leave, before the servers close the connections.
 */
export async function closeRoom(hub: ChatHub): Promise<void> {
  await settledWithin(hub.close(), FLUSH_ON_CLOSE_MS);
}

/**
 * Serves the room on TCP: one connection per member, lines in, lines out.
 * The hub is shared (the WebSocket server passes its own).
 */
export function serveTcpChat(hub: ChatHub, options: TcpChatOptions = {}): Promise<TcpServer> {
  const log = options.logger ?? new Logger();
  const heartbeatMs = options.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
  const idleMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const live = new Set<Connection>();

  const sweep = () => {
    const now = Date.now();
    for (const c of live) {
      const limit = c.heartbeat ? heartbeatMs : idleMs;
      if (limit <= 0 || now - c.session.lastActive <= limit || c.timedOut) continue;
      c.timedOut = true;
      log.info(`${c.session.peer}: nothing received for ${limit} ms, removing`);
      if (c.member) hub.leave(c.member, "timed out");
      c.member = null;
      c.session.closeWith(`ERROR Timed out: nothing received for ${limit / 1000} s\n`)
        .catch(() => {});
    }
  };
  const sweeper = setInterval(sweep, Math.max(50, Math.min(1000, heartbeatMs / 5)));

  const handle = async (session: Session): Promise<void> => {
    const conn = new Connection(session, hub);
    live.add(conn);
    log.info(`Connection from ${session.peer}`);
    let reason: "quit" | "disconnected" = "quit";
    try {
      await session.writeAll(PROMPT);
      const reader = new LineReader(session, { maxLineBytes });
      for (let lines = await reader.readLines(); lines; lines = await reader.readLines()) {
        for (const line of lines) {
          if (!(await conn.line(line))) return;
        }
      }
    } catch (error) {
      reason = "disconnected";
      if (!(error instanceof LineTooLongError)) throw error;
      log.info(`${session.peer}: ${error.message}, closing`);
      if (conn.member) hub.leave(conn.member, reason);
      conn.member = null;
      await session.closeWith(`ERROR ${error.message}\n`);
    } finally {
      live.delete(conn);
      const member = conn.member;
      if (member) {
        hub.leave(member, reason);
        // Let a last notice (the server shutting down) reach the peer before the socket closes.
        await settledWithin(member.flushed(), FLUSH_ON_CLOSE_MS);
      }
      log.info(`Closed ${session.peer}`);
    }
  };

  return serveTcp(handle, {
    address: options.address ?? { transport: "tcp", hostname: "0.0.0.0", port: 8081 },
    maxConns: options.maxConns,
    limit: options.limit,
    signal: options.signal,
    logger: log,
    onListen: options.onListen,
  }).then((server) => {
    server.finished.finally(() => clearInterval(sweeper));
    return server;
  }, (error) => {
    clearInterval(sweeper);
    throw error;
  });
}
