/**
 * The WebSocket engine of netkit's servers, on a `Deno.Listener` (TCP, or
 * TLS for wss): each connection's bounded HTTP/1.1 head is answered with a
 * plain page or upgraded to a {@link WsSocket} (ws_socket.ts); the server
 * owns its sockets, their pings, idle and close deadlines, and closes them
 * all with 1001 on shutdown.
 *
 *     const server = new WsServer(await listenOn(address), (request) =>
 *       new URL(request.url).pathname === "/ws"
 *         ? { onMessage: (socket, message) => socket.send(message.data) }
 *         : new Response("Welcome!\n"));
 *
 * @module
 */
import { Logger } from "../cli/log.ts";
import { writeAll } from "../io/lines.ts";
import { type ByteWindow, INITIAL_BUFFER_BYTES, readMore } from "../io/read_buffer.ts";
import { type SocketHost, type WsHandlers, WsSocket } from "./ws_socket.ts";

export type { WsHandlers, WsSocket };
export type { WsMessage } from "./ws_frame.ts";
import { type Session, TcpServer } from "../net/server.ts";
import type { ConnectionLimit } from "../net/workers.ts";
import { CLOSE_GOING_AWAY, FrameCache } from "./ws_frame.ts";
import {
  encodeResponse,
  errorResponse,
  findHeadEnd,
  handshakeRefusal,
  HEAD_TIMEOUT_MS,
  HttpError,
  MAX_HEAD_BYTES,
  originAllowed,
  type OriginPolicy,
  parseRequestHead,
  switchingProtocolsHead,
} from "./ws_http.ts";

/** Default bound on one incoming message: 1 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1 << 20;
/** Default bound on bytes queued for a peer that does not read: 4 MiB. */
export const DEFAULT_MAX_BUFFERED_BYTES = 4 << 20;
/** Default idle time before a ping (half) and a close (the rest): 60 s. */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** Default wait for the peer's close frame (or a shutdown) before the TCP connection is closed. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 3_000;
/** Default bound on simultaneous connections. */
export const DEFAULT_MAX_SOCKETS = 10_000;
/** A write the peer has not taken for this long means it stopped reading: it is dropped (1008). */
export const DEFAULT_WRITE_STALL_MS = 5_000;
/** First read buffer of an upgraded socket: an idle one costs this much. */
const SOCKET_BUFFER_BYTES = 512;
/** Answer to a connection beyond the bound, before it is closed. */
const BUSY_RESPONSE = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n" +
  "content-length: 36\r\nconnection: close\r\n\r\nService Unavailable: too many conns\n";

/** Answers a request: a plain `Response`, or handlers to upgrade it to a WebSocket. */
export type WsRoute = (request: Request, peer: string) => Response | WsHandlers;

/** Options for {@link WsServer}. */
export interface WsServerOptions {
  /** Foreign Origins allowed besides the request's own host. Default none. */
  allowOrigins?: OriginPolicy;
  /** Largest incoming message in bytes; a larger one closes with 1009 from its header. Default 1 MiB. */
  maxMessageBytes?: number;
  /** Most bytes queued for a peer; beyond it the peer is dropped with 1008. Default 4 MiB. */
  maxBufferedBytes?: number;
  /** Ping after half of this silent, close 1001 after the rest; 0 never. Default 60 s. */
  idleTimeoutMs?: number;
  /** How long a close handshake may take before the TCP connection is closed. Default 3 s. */
  closeTimeoutMs?: number;
  /** A write pending this long drops the peer (1008); 0 never. Default 5 s. */
  writeStallMs?: number;
  /** Most connections (pages and sockets); the next gets 503. Default 10000. */
  maxSockets?: number;
  /** The process's bound on connections (all ports, all workers); replaces `maxSockets`. */
  limit?: ConnectionLimit;
  /** Time to send a request head. Default 10 s. */
  headTimeoutMs?: number;
  /** Where refusals and drops are reported (as errors, shown even when quiet). Default silent. */
  logger?: Logger;
  /** Aborting it closes every socket with 1001 and stops the server. */
  signal?: AbortSignal;
}

/**
 * A WebSocket server on a listener: it answers plain pages and upgrades,
 * owns the set of open sockets, and on shutdown closes them all with 1001
 * before it stops.
 */
export class WsServer implements AsyncDisposable, SocketHost {
  /** Where it listens. */
  readonly addr: Deno.NetAddr;
  /** Resolves once the server has stopped and every connection is closed. */
  readonly finished: Promise<void>;
  /** See {@link WsServerOptions.maxMessageBytes}. */
  readonly maxMessageBytes: number;
  /** See {@link WsServerOptions.maxBufferedBytes}. */
  readonly maxBufferedBytes: number;
  /** See {@link WsServerOptions.idleTimeoutMs}. */
  readonly idleTimeoutMs: number;
  /** See {@link WsServerOptions.closeTimeoutMs}. */
  readonly closeTimeoutMs: number;
  /** See {@link WsServerOptions.writeStallMs}. */
  readonly writeStallMs: number;
  /** See {@link WsServerOptions.logger}. */
  readonly logger: Logger | undefined;
  /** The frame encoder all sockets share, so that a broadcast is encoded once. */
  readonly frames = new FrameCache();
  #route: WsRoute;
  #allowOrigins: OriginPolicy;
  #headTimeoutMs: number;
  #sockets = new Set<WsSocket>();
  /** Connections still sending their head or taking a plain response, with their deadline. */
  #heads = new Map<Session, number>();
  #tcp: TcpServer;
  #timer: ReturnType<typeof setInterval> | undefined;
  #idleWaiters: Array<() => void> = [];
  #stopping: Promise<void> | null = null;

  constructor(listener: Deno.Listener, route: WsRoute, options: WsServerOptions = {}) {
    this.#route = route;
    this.#allowOrigins = options.allowOrigins ?? [];
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    this.writeStallMs = options.writeStallMs ?? DEFAULT_WRITE_STALL_MS;
    this.#headTimeoutMs = options.headTimeoutMs ?? HEAD_TIMEOUT_MS;
    this.logger = options.logger;
    this.addr = listener.addr as Deno.NetAddr;
    this.#tcp = new TcpServer(listener, (session) => this.#serve(session), {
      maxConns: options.maxSockets ?? DEFAULT_MAX_SOCKETS,
      limit: options.limit,
      busyMessage: BUSY_RESPONSE,
      drainTimeoutMs: this.closeTimeoutMs,
      logger: options.logger ?? new Logger({ quiet: true }),
    });
    const every = [this.idleTimeoutMs / 4, this.closeTimeoutMs / 4, this.writeStallMs / 4, 1_000]
      .filter((ms) => ms > 0);
    this.#timer = setInterval(() => this.#tick(), Math.max(20, Math.min(...every)));
    this.finished = this.#tcp.finished.then(() => clearInterval(this.#timer));
    if (options.signal?.aborted) this.shutdown();
    options.signal?.addEventListener("abort", () => this.shutdown(), { once: true });
  }

  /** Open sockets now. */
  get size(): number {
    return this.#sockets.size;
  }

  /** The open sockets (a copy). */
  get sockets(): WsSocket[] {
    return [...this.#sockets];
  }

  /**
   * Closes every socket with 1001, waits for them (at most the close
   * timeout), then stops listening and closes what is left.
   */
  shutdown(): Promise<void> {
    this.#stopping ??= (async () => {
      for (const socket of this.#sockets) socket.close(CLOSE_GOING_AWAY, "server shutting down");
      if (this.#sockets.size > 0) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          new Promise<void>((resolve) => this.#idleWaiters.push(resolve)),
          new Promise<void>((resolve) => timer = setTimeout(resolve, this.closeTimeoutMs)),
        ]);
        clearTimeout(timer);
      }
      await this.#tcp.shutdown();
      clearInterval(this.#timer);
    })();
    return this.#stopping;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }

  /** @internal Removes a finished socket. */
  forget(socket: WsSocket): void {
    this.#sockets.delete(socket);
    if (this.#sockets.size === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  #tick(): void {
    const now = Date.now();
    for (const [session, deadline] of this.#heads) {
      if (now >= deadline) session.close();
    }
    for (const socket of this.#sockets) socket.tick(now);
  }

  #serve(session: Session): Promise<void> {
    // Replies are written as soon as a read is handled; Nagle would hold
    // them back for the peer's delayed ACK.
    (session.conn as Deno.TcpConn).setNoDelay?.(true);
    this.#heads.set(session, Date.now() + this.#headTimeoutMs);
    // The socket's life is not awaited here: an idle socket keeps no frame of this.
    return this.#handshake(session).then((upgraded) => upgraded?.socket.run(upgraded.w));
  }

  /** Reads the head and answers it; returns the upgraded socket and its read buffer. */
  async #handshake(session: Session): Promise<{ socket: WsSocket; w: ByteWindow } | null> {
    const head: ByteWindow = { buf: new Uint8Array(INITIAL_BUFFER_BYTES), start: 0, end: 0 };
    let socket: WsSocket | null = null;
    try {
      const request = await this.#readRequest(session, head);
      if (request === null) return null;
      socket = await this.#answer(session, request);
    } finally {
      this.#heads.delete(session);
    }
    if (socket === null) return null;
    // An idle socket keeps a small read buffer (reads that fill it grow it),
    // not the head's.
    const rest = head.end - head.start;
    const buf = new Uint8Array(Math.max(SOCKET_BUFFER_BYTES, rest));
    buf.set(head.buf.subarray(head.start, head.end));
    return { socket, w: { buf, start: 0, end: rest } };
  }

  /** Reads and parses the head; answers a bad one itself and returns null. */
  async #readRequest(session: Session, w: ByteWindow): Promise<Request | null> {
    let scanned = 0;
    while (true) {
      const end = findHeadEnd(w.buf, w.start + Math.max(0, scanned - 3), w.end);
      if (end >= 0) {
        const head = w.buf.subarray(w.start, end - 4);
        w.start = end;
        try {
          return parseRequestHead(head);
        } catch (error) {
          if (!(error instanceof HttpError)) throw error;
          await this.#respond(session, errorResponse(error.status, error.message), false);
          return null;
        }
      }
      scanned = w.end - w.start;
      if (scanned >= MAX_HEAD_BYTES) {
        this.logger?.error(`${session.peer}: request head over ${MAX_HEAD_BYTES} bytes`);
        await this.#respond(
          session,
          errorResponse(431, `request head over ${MAX_HEAD_BYTES} bytes`),
          false,
        );
        return null;
      }
      if (!(await readMore(session, w, MAX_HEAD_BYTES))) return null;
    }
  }

  async #respond(session: Session, response: Response, head: boolean): Promise<void> {
    try {
      await writeAll(session.conn, await encodeResponse(response, head));
    } catch {
      // The peer left; closing is all that is left.
    }
  }

  /** Routes a request: a plain response (null), or the upgraded socket. */
  async #answer(session: Session, request: Request): Promise<WsSocket | null> {
    const isHead = request.method === "HEAD";
    if (request.method !== "GET" && !isHead) {
      await this.#respond(
        session,
        new Response("Method Not Allowed\n", { status: 405, headers: { allow: "GET, HEAD" } }),
        false,
      );
      return null;
    }
    let answer: Response | WsHandlers;
    try {
      answer = this.#route(request, session.peer);
    } catch (error) {
      this.logger?.error(`${session.peer}: handler: ${error}`);
      answer = errorResponse(500, "the handler failed");
    }
    if (answer instanceof Response) {
      await this.#respond(session, answer, isHead);
      return null;
    }
    const refusal = this.#refuse(session, request);
    if (refusal) {
      await this.#respond(session, refusal, isHead);
      return null;
    }
    const key = request.headers.get("sec-websocket-key")!;
    await writeAll(session.conn, await switchingProtocolsHead(key));
    const socket = new WsSocket(this, session, answer);
    this.#sockets.add(socket);
    return socket;
  }

  #refuse(session: Session, request: Request): Response | null {
    const refusal = handshakeRefusal(request);
    if (refusal) return refusal;
    if (!originAllowed(request, this.#allowOrigins)) {
      const origin = request.headers.get("origin");
      this.logger?.error(
        `${session.peer}: refused Origin "${origin}" (use --allow-origin to allow it)`,
      );
      return errorResponse(403, `Origin "${origin}" is not allowed`);
    }
    if (this.#stopping) return errorResponse(503, "the server is shutting down");
    return null;
  }
}
