/**
 * The TCP server every stream server shares: the accept loop,
 * live-connection tracking, `--max-conns`, the idle timeout, and a
 * graceful, bounded shutdown when its signal aborts. lifecycle.ts runs it
 * as a process (signals, workers, the ready line).
 *
 * @module
 */
import { type Address, formatPeer } from "./addr.ts";
import { DEFAULT_DRAIN_TIMEOUT_MS, DEFAULT_MAX_CONNS, printReady } from "./lifecycle.ts";
import { Logger } from "../cli/log.ts";
import { delay, settledWithin } from "../io/deadline.ts";
import type { ConnectionLimit } from "./workers.ts";
import { type Reader, writeAll, type Writer } from "../io/lines.ts";
import type { TlsCertificate } from "./tls.ts";

/** Sent to the connection that arrives beyond `maxConns`, before it is closed. */
export const BUSY_MESSAGE = "ERROR too many connections, try again later\n";
/** Sent to a connection closed for saying nothing during the idle timeout. */
export const IDLE_MESSAGE = "ERROR idle timeout, closing\n";
/** Sent to a connection closed for leaving a started line or message unfinished too long. */
export function headMessage(headTimeoutMs: number): string {
  return `ERROR request not completed within ${headTimeoutMs} ms, closing\n`;
}
/** Errors that mean the peer went away, not that the server failed. */
const DISCONNECT_ERRORS = [
  Deno.errors.ConnectionReset,
  Deno.errors.ConnectionAborted,
  Deno.errors.BrokenPipe,
  Deno.errors.BadResource,
  Deno.errors.Interrupted,
  Deno.errors.NotConnected,
  // A TLS peer gone before or without its close_notify.
  Deno.errors.UnexpectedEof,
];
const encoder = new TextEncoder();

/** Whether an error only says that a peer went away. */
export function isDisconnect(error: unknown): boolean {
  return DISCONNECT_ERRORS.some((kind) => error instanceof kind);
}

/**
 * One client connection as a handler sees it: a {@link Reader} and
 * {@link Writer} over the socket that notes activity for the idle timeout
 * and reads end-of-stream once the server shuts down.
 */
export class Session implements Reader, Writer {
  /** Accept order, from 0. */
  readonly id: number;
  readonly conn: Deno.Conn;
  /** The peer as `host:port` (or the socket path). */
  readonly peer: string;
  /** Aborted when the server shuts down. */
  readonly signal: AbortSignal;
  /** When the peer last sent bytes (ms since the epoch). */
  lastActive = Date.now();
  #startedAt: number | null = null;
  #partialNext = false;
  #reading = false;
  #closed = false;
  #closing = false;
  #draining = false;

  constructor(id: number, conn: Deno.Conn, signal: AbortSignal) {
    this.id = id;
    this.conn = conn;
    this.peer = formatPeer(conn.remoteAddr);
    this.signal = signal;
  }

  /** Whether the session waits for the peer (and can be closed without losing work). */
  get reading(): boolean {
    return this.#reading;
  }

  /** Whether {@link closeWith} or {@link close} has begun closing this connection. */
  get closing(): boolean {
    return this.#closing || this.#closed;
  }

  /** Whether the server closed this connection. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * While the handler waits for the rest of a started message: when it
   * first waited for it (ms since the epoch). Null between
   * messages and while the handler works. Framers say when a message is
   * started through {@link partial} (lib/io/read_buffer.ts readMore).
   */
  get partialSince(): number | null {
    return this.#reading ? this.#startedAt : null;
  }

  /** Notes that the next read is for the rest of a started message (see {@link partialSince}). */
  partial(started: boolean): void {
    this.#partialNext = started;
  }

  /** Reads from the peer; null at end of stream, when closed, or once draining. */
  read(p: Uint8Array): Promise<number | null> {
    if (this.#draining || this.#closed) return Promise.resolve(null);
    // Counted from the first wait for the rest: the handler's own work on
    // what came before is not the peer's delay.
    this.#startedAt = this.#partialNext ? (this.#startedAt ?? Date.now()) : null;
    this.#partialNext = false;
    this.#reading = true;
    // Callbacks made once per session rather than an async frame per read:
    // an idle connection always has a read pending, so this is its cost.
    return this.conn.read(p).then(this.#afterRead, this.#readFailed);
  }

  #afterRead = (n: number | null): number | null => {
    this.#reading = false;
    this.lastActive = Date.now();
    return n;
  };

  #readFailed = (error: unknown): null => {
    this.#reading = false;
    if (this.#closed) return null;
    throw error;
  };

  /** Writes some of `p` to the peer. */
  write(p: Uint8Array): Promise<number> {
    return this.conn.write(p);
  }

  /** Writes all of `data`, or a string as UTF-8. */
  writeAll(data: Uint8Array | string): Promise<void> {
    return writeAll(this.conn, typeof data === "string" ? encoder.encode(data) : data);
  }

  /** Stops reading: the next read returns null; a pending read is ended now. */
  drain(): void {
    this.#draining = true;
    if (this.#reading) this.close();
  }

  /** Closes the connection once; later calls do nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // Already closed by the runtime.
    }
  }

  /** Writes a last line (best effort, bounded in time) and closes. */
  async closeWith(message: string, timeoutMs = 1_000): Promise<void> {
    // Once: the write may wait (a TLS peer still in its handshake), and sweeps repeat.
    if (this.#closed || this.#closing) return;
    this.#closing = true;
    // A failed write means the peer is gone; closing is all that is left.
    await settledWithin(this.writeAll(message), timeoutMs);
    this.close();
  }
}

/** Handles one connection; the runner closes it when the promise settles. */
export type SessionHandler = (session: Session) => Promise<void>;

/** Options for {@link serveTcp}. */
export interface ServeTcpOptions {
  /** Where to listen. Default `0.0.0.0:1234`. */
  address?: Address;
  /** Most simultaneous connections; the next one gets an error line and is closed. Default 10000. */
  maxConns?: number;
  /** The process's bound on connections (all ports, all workers); replaces `maxConns`. Default none. */
  limit?: ConnectionLimit;
  /** Close a connection whose peer sent nothing for this long; 0 never. Default 0. */
  idleTimeoutMs?: number;
  /** Line sent before an idle close. Default {@link IDLE_MESSAGE}; "" sends nothing. */
  idleMessage?: string;
  /**
   * Close a connection that leaves a started line or message (a request
   * head) unfinished this long, counted from its first byte; 0 never.
   * Silence between messages is the idle timeout's. Default 0.
   */
  headTimeoutMs?: number;
  /** Line sent before a head-timeout close. Default {@link headMessage}; "" sends nothing. */
  headMessage?: string;
  /** Line sent to a connection over `maxConns`. Default {@link BUSY_MESSAGE}. */
  busyMessage?: string;
  /** How long shutdown waits for busy handlers. Default {@link DEFAULT_DRAIN_TIMEOUT_MS}. */
  drainTimeoutMs?: number;
  /** Aborting it shuts the server down gracefully. */
  signal?: AbortSignal;
  /** Share the port with other processes (Linux `SO_REUSEPORT`). Default false. */
  reusePort?: boolean;
  /** Serve TLS with this certificate (see lib/net/tls.ts). Default plain TCP. */
  tls?: TlsCertificate;
  /** Diagnostics. Default a {@link Logger} on stderr. */
  logger?: Logger;
  /** Called once listening. Default prints `Listening on tcp://H:P` (`tls://`) to stdout. */
  onListen?: (addr: Deno.Addr) => void;
}

/** A running TCP (or unix socket) server. */
export class TcpServer implements AsyncDisposable {
  /** Where it listens; with port 0, the port the system chose. */
  readonly addr: Deno.Addr;
  /** Resolves when the server has stopped and every handler has finished. */
  readonly finished: Promise<void>;
  #listener: Deno.Listener;
  #sessions = new Set<Session>();
  #handlers = new Set<Promise<void>>();
  #controller = new AbortController();
  #logger: Logger;
  #options: ServeTcpOptions;
  #nextId = 0;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #stopped: Promise<void> | null = null;
  #handler: SessionHandler;

  constructor(listener: Deno.Listener, handler: SessionHandler, options: ServeTcpOptions) {
    this.#listener = listener;
    this.#handler = handler;
    this.#options = options;
    this.#logger = options.logger ?? new Logger();
    this.addr = listener.addr;
    const idle = options.idleTimeoutMs ?? 0;
    const head = options.headTimeoutMs ?? 0;
    const bounds = [idle, head].filter((ms) => ms > 0);
    if (bounds.length > 0) {
      const every = Math.min(1000, Math.max(10, Math.min(...bounds) / 4));
      this.#sweeper = setInterval(() => this.#sweep(idle, head), every);
    }
    options.signal?.addEventListener("abort", () => this.shutdown(), { once: true });
    this.finished = this.#acceptLoop();
  }

  /** Connections open now. */
  get connections(): number {
    return this.#sessions.size;
  }

  /** Connections accepted so far, the next session's id. */
  get accepted(): number {
    return this.#nextId;
  }

  /**
   * Stops accepting, lets busy handlers finish (up to the drain timeout),
   * closes idle connections, and resolves when every handler is done.
   */
  shutdown(): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = this.#stop();
    }
    return this.#stopped.then(() => this.finished);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }

  async #stop(): Promise<void> {
    clearInterval(this.#sweeper);
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    this.#controller.abort();
    for (const session of this.#sessions) session.drain();
    const drainMs = this.#options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    await settledWithin(Promise.allSettled([...this.#handlers]), drainMs);
    for (const session of this.#sessions) session.close();
  }

  async #acceptLoop(): Promise<void> {
    const limit = this.#options.limit;
    const maxConns = limit?.max ?? this.#options.maxConns ?? DEFAULT_MAX_CONNS;
    while (!this.#controller.signal.aborted) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (this.#controller.signal.aborted || error instanceof Deno.errors.BadResource) break;
        // Out of file descriptors and the like: say so, breathe, go on.
        this.#logger.error("accept:", error);
        await delay(100);
        continue;
      }
      if (limit ? !limit.tryAcquire() : this.#sessions.size >= maxConns) {
        const busy = new Session(-1, conn, this.#controller.signal);
        this.#logger.info(`Refused ${busy.peer}: ${maxConns} connections already`);
        busy.closeWith(this.#options.busyMessage ?? BUSY_MESSAGE).catch(() => {});
        continue;
      }
      this.#start(new Session(this.#nextId++, conn, this.#controller.signal));
    }
    if (!this.#stopped) this.#stopped = this.#stop();
    await this.#stopped;
    while (this.#handlers.size > 0) await Promise.allSettled([...this.#handlers]);
    const addr = this.addr;
    if (addr.transport === "unix") {
      await Deno.remove(addr.path).catch(() => {});
    }
  }

  #start(session: Session): void {
    this.#sessions.add(session);
    const run = (async () => {
      try {
        await this.#handler(session);
      } catch (error) {
        if (isDisconnect(error) || session.closed) {
          this.#logger.info(`${session.peer}: connection lost (${errorText(error)})`);
        } else {
          this.#logger.error(`${session.peer}: ${errorText(error)}`);
        }
      } finally {
        session.close();
        this.#sessions.delete(session);
        this.#options.limit?.release();
      }
    })();
    this.#handlers.add(run);
    run.finally(() => this.#handlers.delete(run));
  }

  #sweep(idleTimeoutMs: number, headTimeoutMs: number): void {
    const now = Date.now();
    const idleSince = idleTimeoutMs > 0 ? now - idleTimeoutMs : -Infinity;
    const startedSince = headTimeoutMs > 0 ? now - headTimeoutMs : -Infinity;
    for (const session of this.#sessions) {
      if (session.closing) continue;
      const started = session.partialSince;
      if (started !== null && started < startedSince) {
        this.#logger.info(
          `${session.peer}: request unfinished after ${headTimeoutMs} ms, closing`,
        );
        const message = this.#options.headMessage ?? headMessage(headTimeoutMs);
        session.closeWith(message).catch(() => {});
      } else if (session.lastActive < idleSince) {
        this.#logger.info(`${session.peer}: idle for ${idleTimeoutMs} ms, closing`);
        session.closeWith(this.#options.idleMessage ?? IDLE_MESSAGE).catch(() => {});
      }
    }
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Removes a unix socket file that no server listens on any more; refuses
 * (throws `AddrInUse`) when one still does, and leaves other files alone.
 */
export async function removeStaleSocket(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (!info.isSocket) {
    throw new Deno.errors.AlreadyExists(`Cannot listen on "${path}": it exists and is no socket`);
  }
  try {
    const probe = await Deno.connect({ transport: "unix", path });
    probe.close();
    throw new Deno.errors.AddrInUse(`Cannot listen on "${path}": a server is listening there`);
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) throw error;
    await Deno.remove(path);
  }
}

/**
 * Opens a listener on a parsed address (removing a stale unix socket
 * first), a TLS one when `tls` is given (TCP only).
 */
export async function listenOn(
  address: Address,
  reusePort = false,
  tls?: TlsCertificate,
): Promise<Deno.Listener> {
  if (address.transport === "unix") {
    if (tls) throw new TypeError(`Cannot serve TLS on "unix:${address.path}": TCP only`);
    await removeStaleSocket(address.path);
    return Deno.listen({ transport: "unix", path: address.path });
  }
  const options = {
    transport: "tcp",
    hostname: address.hostname,
    port: address.port,
    ...(reusePort ? { reusePort: true } : {}),
  } as const;
  return tls ? Deno.listenTls({ ...options, cert: tls.cert, key: tls.key }) : Deno.listen(options);
}

/**
 * Listens and serves each connection with `handler` until `signal` aborts.
 * Prints the ready line through `onListen` once the socket is bound.
 */
export async function serveTcp(
  handler: SessionHandler,
  options: ServeTcpOptions = {},
): Promise<TcpServer> {
  const address = options.address ?? { transport: "tcp", hostname: "0.0.0.0", port: 1234 };
  const listener = await listenOn(address, options.reusePort, options.tls);
  const server = new TcpServer(listener, handler, options);
  (options.onListen ?? ((addr) => printReady(addr, { tls: options.tls !== undefined })))(
    server.addr,
  );
  return server;
}
