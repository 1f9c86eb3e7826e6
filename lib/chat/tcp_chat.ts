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
 * Seed 001's own client is recognised by its first bytes (its heartbeat
 * `1` with no newline, or a message `2006-01-02 15:04:05\n\tNAME: text`)
 * and joins the same room in its own dialect: raw chunks, `1` answered
 * with `1`, the name taken from its messages, and everything it receives
 * shaped as its messages (`TIME\n\tNAME: text`, no newline at the end).
 *
 * Used by `tcp_chat_server` and by `ws_chat_server --tcp-port`.
 *
 * @module
 */
import type { Address } from "../net/addr.ts";
import { chatTime, checkName, escapeControls, NameError } from "./chat_text.ts";
import { type ChatHub, type Member, onlineText } from "./hub.ts";
import { LineReader, LineTooLongError } from "../io/lines.ts";
import { prependReader, readUntil } from "../io/read_buffer.ts";
import { Logger } from "../cli/log.ts";
import { settledWithin } from "../io/deadline.ts";
import type { ConnectionLimit } from "../net/workers.ts";
import { serveTcp, type Session, type TcpServer } from "../net/server.ts";
import { DEFAULT_HEAD_TIMEOUT_MS } from "../net/lifecycle.ts";
import type { TlsCertificate } from "../net/tls.ts";

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
  /** Close a member that leaves a started line unfinished this long; 0 never. Default 10000 ms. */
  headTimeoutMs?: number;
  /** Most simultaneous connections. Default 10000. */
  maxConns?: number;
  /** Serve TLS with this certificate. Default plain TCP. */
  tls?: TlsCertificate;
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
  /** The name seed 001's client writes in its messages (the hub may have given another). */
  #seedName: string | null = null;

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

  /** Handles one raw chunk from seed 001's client; false once the connection should end. */
  async seedChunk(text: string): Promise<boolean> {
    const { heartbeats, messages } = parseSeedChunk(text);
    if (heartbeats > 0) await this.session.writeAll(SEED_HEARTBEAT);
    for (const { name, text } of messages) {
      if (name !== null && name !== this.#seedName) {
        this.#seedName = name;
        try {
          if (this.member) this.#hub.rename(this.member, name);
          else this.member = this.#hub.join(name, this.#seedSink(), { echo: false });
        } catch (error) {
          if (!(error instanceof NameError)) throw error;
          await this.session.writeAll(toSeed(`ERROR ${error.message}\n`));
          continue;
        }
      }
      if (this.member) this.#hub.broadcast(this.member, text);
    }
    return true;
  }

  /** The hub's lines reshaped as seed 001's messages. */
  #seedSink() {
    const session = this.session;
    return {
      format: "line" as const,
      write: (data: Uint8Array) => session.writeAll(toSeed(decoder.decode(data))),
      close: () => session.close(),
    };
  }
}

/** Seed 001's heartbeat, both ways. */
const SEED_HEARTBEAT = "1";
/** The header of each of seed 001's messages: `time.Now().Format("2006-01-02 15:04:05")`, newline, tab. */
const SEED_HEADER = /(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\n\t/g;
const decoder = new TextDecoder();

/** Whether a connection's first bytes are seed 001's client: its heartbeat alone, or a message. */
export function isSeedClient(first: string): boolean {
  return /^1+$/.test(first) || /^1*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n\t/.test(first);
}

/**
 * Splits a raw chunk from seed 001's client into heartbeats and messages:
 * its writes arrive unframed, so a `1` may stick to a message and several
 * messages may share a chunk. A message's name is what precedes `: `
 * (null for text without a header, a message cut by TCP).
 */
export function parseSeedChunk(
  text: string,
): { heartbeats: number; messages: { name: string | null; text: string }[] } {
  const headers = [...text.matchAll(SEED_HEADER)];
  const lead = text.slice(0, headers[0]?.index ?? text.length);
  const messages: { name: string | null; text: string }[] = [];
  let heartbeats = 0;
  if (/^1+$/.test(lead)) heartbeats = lead.length;
  else if (lead.trim() !== "") messages.push({ name: null, text: lead });
  headers.forEach((header, i) => {
    const body = text.slice(header.index! + header[0].length, headers[i + 1]?.index ?? text.length);
    const colon = body.indexOf(": ");
    if (colon > 0) messages.push({ name: body.slice(0, colon), text: body.slice(colon + 2) });
    else messages.push({ name: null, text: body });
  });
  return { heartbeats, messages };
}

/** Reshapes the room's lines (`TIME NAME: text`, `* notice`) as seed 001's messages. */
export function toSeed(lines: string): string {
  return lines.split("\n").filter((line) => line !== "").map((line) => {
    const stamped = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (.*)$/.exec(line);
    return stamped ? `${stamped[1]}\n\t${stamped[2]}` : `${chatTime(new Date())}\n\t${line}`;
  }).join("\n");
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
      const first = await readUntil(session, () => true, maxLineBytes);
      if (first === null) return;
      if (isSeedClient(decoder.decode(first))) {
        conn.heartbeat = true;
        log.info(`${session.peer}: seed 001's client`);
        const buf = new Uint8Array(maxLineBytes);
        for (let chunk: Uint8Array | null = first; chunk;) {
          if (!(await conn.seedChunk(decoder.decode(chunk)))) return;
          const n = await session.read(buf);
          chunk = n === null ? null : buf.subarray(0, n);
        }
        return;
      }
      const reader = new LineReader(prependReader(first, session), { maxLineBytes });
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
    headTimeoutMs: options.headTimeoutMs ?? DEFAULT_HEAD_TIMEOUT_MS,
    tls: options.tls,
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
