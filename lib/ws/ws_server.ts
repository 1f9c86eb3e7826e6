/**
 * The WebSocket engine of netkit's servers, on a `Deno.Listener` (TCP, or
 * TLS for wss): each connection's bounded HTTP/1.1 head is answered with a
 * plain page or upgraded, and an upgraded socket reads frames with
 * {@link FrameReader} and writes its queued frames in one write, bounded in
 * bytes, with keepalive pings, an idle timeout and a close handshake that
 * always ends in a closed TCP connection.
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
import { type Session, TcpServer } from "../net/server.ts";
import type { ConnectionLimit } from "../net/workers.ts";
import {
  CLOSE_ABNORMAL,
  CLOSE_GOING_AWAY,
  CLOSE_NO_STATUS,
  CLOSE_POLICY,
  CLOSE_SERVER_ERROR,
  closePayload,
  FrameCache,
  type FrameHandler,
  FrameReader,
  frameSize,
  OP_BINARY,
  OP_CLOSE,
  OP_PING,
  OP_PONG,
  OP_TEXT,
  parseClosePayload,
  writeFrameHeader,
  type WsMessage,
  WsProtocolError,
} from "./ws_frame.ts";
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
/** Time a dropped peer's close frame gets before its TCP connection is closed. */
const DROP_GRACE_MS = 1_000;
/** Answer to a connection beyond the bound, before it is closed. */
const BUSY_RESPONSE = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n" +
  "content-length: 36\r\nconnection: close\r\n\r\nService Unavailable: too many conns\n";

/** What a server does with an upgraded socket; every callback is optional but `onMessage`. */
export interface WsHandlers {
  /** The socket is open and may send. */
  onOpen?(socket: WsSocket): void;
  /** A whole message, valid only during the call (send its payload on, or copy it). */
  onMessage(socket: WsSocket, message: WsMessage): void;
  /** Called exactly once per socket, whoever closed it: the peer's code, ours, or 1006. */
  onClose?(socket: WsSocket, code: number, reason: string): void;
}

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

/** Socket states: open; we sent a close frame and wait for the peer's; we failed the
 * connection (reads are discarded until EOF or the deadline); the TCP connection is closed. */
const State = { Open: 0, Closing: 1, Failed: 2, Done: 3 } as const;

/** One upgraded connection: sends bounded in bytes, a close that happens once. */
export class WsSocket implements FrameHandler {
  /** The client's address as `host:port`. */
  readonly peer: string;
  /** Accept order, from 0. */
  readonly id: number;
  /** When the peer last sent bytes (ms since the epoch). */
  lastRead = Date.now();
  #server: WsServer;
  #session: Session;
  #handlers: WsHandlers;
  #reader: FrameReader;
  #state: number = State.Open;
  #deadline = 0;
  #pinged = false;
  #closeCode = CLOSE_ABNORMAL;
  #closeReason = "";
  /** Frames waiting for the next write, packed in one buffer (none while idle). */
  #out: Uint8Array | null = null;
  #outBytes = 0;
  /** Bytes of the write in progress. */
  #inFlight = 0;
  #writing = false;
  #writeSince = 0;
  #corked = false;
  #endWhenFlushed = false;
  #waiters: Array<() => void> | null = null;

  constructor(server: WsServer, session: Session, handlers: WsHandlers) {
    this.#server = server;
    this.#session = session;
    this.peer = session.peer;
    this.id = session.id;
    this.#handlers = handlers;
    this.#reader = new FrameReader(server.maxMessageBytes);
  }

  /** Whether it is open for sending. */
  get open(): boolean {
    return this.#state === State.Open;
  }

  /** Bytes queued for the peer and not yet taken by the kernel. */
  get bufferedAmount(): number {
    return this.#outBytes + this.#inFlight;
  }

  /** Whether a write is in progress (more sends are batched behind it). */
  get writing(): boolean {
    return this.#writing;
  }

  /**
   * Sends a message: a string as text, bytes as binary (or as `opcode`
   * says). Returns false if the socket is not open, or if this send took
   * the peer's unread bytes past the bound, in which case the peer is
   * dropped with 1008. A payload sent to many sockets in a row is encoded
   * once.
   */
  send(data: string | Uint8Array, opcode?: number): boolean {
    if (this.#state !== State.Open) return false;
    const payload = typeof data === "string" ? encoder.encode(data) : data;
    const op = opcode ?? (typeof data === "string" ? OP_TEXT : OP_BINARY);
    const max = this.#server.maxBufferedBytes;
    if (this.#outBytes + this.#inFlight + frameSize(payload.byteLength) > max) {
      this.#server.logger?.error(`${this.peer}: more than ${max} bytes unread, closing`);
      this.drop(CLOSE_POLICY, "too slow: reader fell behind");
      return false;
    }
    if (!this.#writing && !this.#corked && this.#outBytes === 0) {
      this.#write(this.#server.frames.frame(op, payload));
    } else {
      this.#append(op, payload);
    }
    return true;
  }

  /** Resolves once everything queued has been written (or the socket closed). */
  flushed(): Promise<void> {
    if (!this.#writing && this.#outBytes === 0) return Promise.resolve();
    return new Promise((resolve) => (this.#waiters ??= []).push(resolve));
  }

  /** Starts the close handshake once; later calls do nothing. */
  close(code = 1000, reason = ""): void {
    if (this.#state !== State.Open) return;
    this.#state = State.Closing;
    this.#closeCode = code;
    this.#closeReason = reason;
    this.#deadline = Date.now() + this.#server.closeTimeoutMs;
    this.#append(OP_CLOSE, closePayload(code, reason));
  }

  /**
   * Closes a peer that fell behind: its queue is discarded, a close frame
   * offered, and its TCP connection closed after a short grace even if the
   * peer never reads it.
   */
  drop(code = CLOSE_POLICY, reason = "too slow"): void {
    if (this.#state === State.Done) return;
    this.#discard();
    if (this.#state === State.Open) this.close(code, reason);
    this.#deadline = Math.min(this.#deadline, Date.now() + DROP_GRACE_MS);
  }

  /** Called by the server's timer: pings, idle and close deadlines, stalled writes. */
  tick(now: number): void {
    if (this.#state === State.Done) return;
    if (this.#state !== State.Open) {
      if (now < this.#deadline) return;
      if (this.#state === State.Closing) {
        this.#closeCode = CLOSE_ABNORMAL;
        this.#closeReason = "close timed out";
      }
      this.#session.close();
      return;
    }
    const stall = this.#server.writeStallMs;
    if (stall > 0 && this.#writing && now - this.#writeSince > stall) {
      this.#server.logger?.error(`${this.peer}: took nothing for ${stall} ms, dropping`);
      this.drop(CLOSE_POLICY, "too slow: nothing read for too long");
      return;
    }
    const idle = this.#server.idleTimeoutMs;
    if (idle <= 0) return;
    const silent = now - this.lastRead;
    if (silent >= idle) {
      this.close(CLOSE_GOING_AWAY, "idle timeout");
    } else if (silent >= idle / 2 && !this.#pinged) {
      this.#pinged = true;
      this.#append(OP_PING, EMPTY);
    }
  }

  /** @internal Reads frames until the connection ends; reports the close once. */
  async run(w: ByteWindow): Promise<void> {
    try {
      this.#handlers.onOpen?.(this);
    } catch (error) {
      this.#server.logger?.error(`${this.peer}: onOpen: ${error}`);
      this.close(CLOSE_SERVER_ERROR, "server error");
    }
    try {
      while (this.#state !== State.Done) {
        if (this.#state === State.Failed) {
          w.start = w.end; // discarded: the peer gets to read our close frame, not an RST
        } else if (w.start < w.end) {
          this.#feed(w);
          if (this.#state === State.Done) break;
        }
        if (!(await readMore(this.#session, w, this.#reader.maxPending))) break;
        this.lastRead = Date.now();
        this.#pinged = false;
      }
    } catch (error) {
      if (!this.#session.closed) this.#server.logger?.info(`${this.peer}: ${error}`);
    } finally {
      this.#finish();
    }
  }

  #feed(w: ByteWindow): void {
    this.#corked = true;
    try {
      this.#reader.feed(w, this);
    } catch (error) {
      if (error instanceof WsProtocolError) {
        this.#server.logger?.error(`${this.peer}: ${error.message}, closing with ${error.code}`);
        this.#fail(error.code, error.message);
      } else {
        this.#server.logger?.error(`${this.peer}: ${error}`);
        this.#fail(CLOSE_SERVER_ERROR, "server error");
      }
    } finally {
      this.#corked = false;
      this.#flush();
    }
  }

  /** RFC 6455 7.1.7: send a close frame, stop reading, close once it is out. */
  #fail(code: number, reason: string): void {
    if (this.#state === State.Open) {
      this.#discard();
      this.#append(OP_CLOSE, closePayload(code, reason));
    }
    this.#closeCode = code;
    this.#closeReason = reason;
    this.#state = State.Failed;
    this.#deadline = Math.min(
      this.#deadline || Infinity,
      Date.now() + Math.min(DROP_GRACE_MS, this.#server.closeTimeoutMs),
    );
    this.#endWhenFlushed = true;
    if (!this.#writing && this.#outBytes === 0) this.#halfClose();
  }

  /** FrameHandler: a whole message. */
  onMessage(message: WsMessage): void {
    if (this.#state !== State.Open) return;
    try {
      this.#handlers.onMessage(this, message);
    } catch (error) {
      this.#server.logger?.error(`${this.peer}: onMessage: ${error}`);
      this.close(CLOSE_SERVER_ERROR, "server error");
    }
  }

  /** FrameHandler: a control frame. */
  onControl(opcode: number, payload: Uint8Array): void {
    if (opcode === OP_PING) {
      if (this.#state === State.Open) this.#append(OP_PONG, payload);
    } else if (opcode === OP_CLOSE) {
      const { code, reason } = parseClosePayload(payload);
      if (this.#state === State.Open) {
        // Echo the code (none for none), then close once the reply is out.
        this.#closeCode = code;
        this.#closeReason = reason;
        // What was sent before the close still goes out, then the reply.
        const reply = code === CLOSE_NO_STATUS ? EMPTY : closePayload(code);
        this.#append(OP_CLOSE, reply);
        this.#state = State.Closing;
        this.#deadline = Date.now() + this.#server.closeTimeoutMs;
        // Closed once the reply is written (the read loop flushes it).
        this.#endWhenFlushed = true;
      } else if (this.#state === State.Closing) {
        if (this.#closeCode !== CLOSE_GOING_AWAY || code !== CLOSE_NO_STATUS) {
          this.#closeCode = code;
          this.#closeReason = reason;
        }
        this.#end();
      }
    }
  }

  /** Forgets what waits to be written (not the write in progress). */
  #discard(): void {
    this.#out = null;
    this.#outBytes = 0;
  }

  /** Packs a frame behind those waiting, and writes unless a write is on or the socket is corked. */
  #append(opcode: number, payload: Uint8Array): void {
    const need = this.#outBytes + frameSize(payload.byteLength);
    let out = this.#out;
    if (out === null || need > out.byteLength) {
      const bigger = new Uint8Array(Math.max(need, (out?.byteLength ?? 512) * 2));
      if (out !== null) bigger.set(out.subarray(0, this.#outBytes));
      out = this.#out = bigger;
    }
    const at = this.#outBytes + writeFrameHeader(out, this.#outBytes, opcode, payload.byteLength);
    out.set(payload, at);
    this.#outBytes = need;
    if (!this.#writing && !this.#corked) this.#flush();
  }

  #flush(): void {
    if (this.#writing || this.#outBytes === 0) return;
    const batch = this.#out!.subarray(0, this.#outBytes);
    this.#out = null;
    this.#outBytes = 0;
    this.#write(batch);
  }

  #write(batch: Uint8Array): void {
    this.#writing = true;
    this.#writeSince = Date.now();
    this.#inFlight = batch.byteLength;
    this.#batch = batch;
    this.#session.conn.write(batch).then(this.#afterWrite, this.#onWriteError);
  }

  // Callbacks kept per socket rather than made per write: a broadcast to
  // 2000 members would otherwise leave 4000 closures to collect.
  #batch: Uint8Array | null = null;
  #afterWrite = (n: number): void => {
    const batch = this.#batch!;
    if (n === batch.byteLength) {
      this.#batch = null;
      this.#written();
    } else {
      this.#writeRest(batch.subarray(n));
    }
  };
  #onWriteError = (): void => this.#writeFailed();

  /** The rest of a partial write (the kernel's buffer was full). */
  #writeRest(rest: Uint8Array): void {
    writeAll(this.#session.conn, rest).then(() => this.#written(), () => this.#writeFailed());
  }

  #written(): void {
    this.#batch = null;
    this.#writing = false;
    this.#inFlight = 0;
    if (this.#outBytes > 0) {
      this.#flush();
      return;
    }
    this.#wake();
    if (this.#endWhenFlushed) {
      if (this.#state === State.Failed) this.#halfClose();
      else this.#end();
    }
  }

  #writeFailed(): void {
    this.#writing = false;
    this.#inFlight = 0;
    this.#discard();
    if (this.#state === State.Open) this.#closeCode = CLOSE_ABNORMAL;
    this.#session.close();
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    if (waiters === null) return;
    this.#waiters = null;
    for (const wake of waiters) wake();
  }

  /** After failing: no more writes; reads go on (discarded) until EOF or the deadline. */
  #halfClose(): void {
    try {
      (this.#session.conn as Deno.TcpConn).closeWrite?.();
    } catch {
      this.#session.close();
    }
  }

  /** The handshake is complete (or given up): the server closes TCP first. */
  #end(): void {
    this.#state = State.Done;
    this.#session.close();
  }

  #finish(): void {
    const wasOpen = this.#state === State.Open;
    this.#state = State.Done;
    this.#session.close();
    this.#discard();
    this.#wake();
    if (wasOpen) this.#closeCode = CLOSE_ABNORMAL;
    this.#server.forget(this);
    try {
      this.#handlers.onClose?.(this, this.#closeCode, this.#closeReason);
    } catch (error) {
      this.#server.logger?.error(`${this.peer}: onClose: ${error}`);
    }
  }
}

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();

/**
 * A WebSocket server on a listener: it answers plain pages and upgrades,
 * owns the set of open sockets, and on shutdown closes them all with 1001
 * before it stops.
 */
export class WsServer implements AsyncDisposable {
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
