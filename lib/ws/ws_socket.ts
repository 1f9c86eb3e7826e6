/**
 * One upgraded WebSocket connection of a {@link WsServer}: it reads frames
 * with {@link FrameReader} until the connection ends, writes what is sent
 * to it in one write per batch, bounded in bytes, and closes once: a close
 * handshake with a deadline, or a drop that closes TCP after a short grace.
 *
 * @module
 */
import type { Logger } from "../cli/log.ts";
import { writeAll } from "../io/lines.ts";
import { type ByteWindow, readMore } from "../io/read_buffer.ts";
import type { Session } from "../net/server.ts";
import {
  CLOSE_ABNORMAL,
  CLOSE_GOING_AWAY,
  CLOSE_NO_STATUS,
  CLOSE_POLICY,
  CLOSE_SERVER_ERROR,
  closePayload,
  type FrameCache,
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

/** Time a dropped peer's close frame gets before its TCP connection is closed. */
const DROP_GRACE_MS = 1_000;

/** What a server does with an upgraded socket; every callback is optional but `onMessage`. */
export interface WsHandlers {
  /** The socket is open and may send. */
  onOpen?(socket: WsSocket): void;
  /** A whole message, valid only during the call (send its payload on, or copy it). */
  onMessage(socket: WsSocket, message: WsMessage): void;
  /** Called exactly once per socket, whoever closed it: the peer's code, ours, or 1006. */
  onClose?(socket: WsSocket, code: number, reason: string): void;
}

/** What a socket needs of its server: the bounds, the shared encoder, and to be forgotten. */
export interface SocketHost {
  /** Largest incoming message; a larger one is refused from its header (1009). */
  readonly maxMessageBytes: number;
  /** Most bytes waiting for one peer; past it the peer is dropped (1008). */
  readonly maxBufferedBytes: number;
  /** Ping after half of this silent, close 1001 after the rest; 0 never. */
  readonly idleTimeoutMs: number;
  /** How long a close handshake may take before TCP is closed. */
  readonly closeTimeoutMs: number;
  /** A write pending this long drops the peer (1008); 0 never. */
  readonly writeStallMs: number;
  /** Where refusals and drops are reported. */
  readonly logger: Logger | undefined;
  /** The encoder all sockets share, so that a broadcast is encoded once. */
  readonly frames: FrameCache;
  /** Removes a socket whose connection has ended. */
  forget(socket: WsSocket): void;
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
  #server: SocketHost;
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

  constructor(server: SocketHost, session: Session, handlers: WsHandlers) {
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
