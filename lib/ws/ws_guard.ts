/**
 * What every WebSocket server of netkit needs around `Deno.upgradeWebSocket`:
 * the Origin check against Cross-Site WebSocket Hijacking, a bound on
 * message size (close 1009), a bound on what a slow reader may leave
 * buffered (close 1008), idle pings, exactly one close per socket, and
 * closing every socket with 1001 on shutdown.
 *
 *     const guard = new WsGuard({ allowOrigins: parseAllowedOrigins(values["allow-origin"]) });
 *     Deno.serve((req, info) =>
 *       guard.upgrade(req, info, { onMessage: (client, data) => client.send(data) })
 *     );
 *     // on SIGINT: await guard.closeAll();
 *
 * Limits of the runtime it works around: Deno receives a whole message (up
 * to its own 64 MiB cap) before the guard sees it, so the size bound closes
 * the connection after the fact; `send()` never pushes back, so the guard
 * watches `bufferedAmount`; and Deno has no way to drop the TCP connection
 * of an upgraded socket: a close frame queued behind writes a peer never
 * reads stays queued. The guard therefore stops sending at the bound
 * (memory stays bounded), closes, and after `closeTimeoutMs` forgets the
 * socket and reports it closed with 1006; the runtime releases the
 * connection when the peer reads, resets, or the process exits.
 *
 * @module
 */
import { formatPeer } from "../net/addr.ts";
import type { Logger } from "../cli/log.ts";
import { settledWithin } from "../io/deadline.ts";
import type { ConnectionLimit } from "../net/workers.ts";

/** Normal closure. */
export const CLOSE_NORMAL = 1000;
/** The server is going away (shutdown, or an idle peer that did not answer a ping). */
export const CLOSE_GOING_AWAY = 1001;
/** Policy violation: here, a peer that reads too slowly. */
export const CLOSE_POLICY = 1008;
/** A message above the size bound. */
export const CLOSE_TOO_BIG = 1009;
/** Reported (never sent) when a close did not complete in time. */
export const CLOSE_ABNORMAL = 1006;

const CLOSE_NAMES: Record<number, string> = {
  1000: "normal",
  1001: "going away",
  1002: "protocol error",
  1003: "unsupported data",
  1005: "no status",
  1006: "abnormal closure",
  1007: "invalid payload data",
  1008: "policy violation",
  1009: "message too big",
  1011: "internal server error",
};

/** A close code as logs show it, the way gorilla words it: `1000 (normal)`. */
export function describeClose(code: number): string {
  const name = CLOSE_NAMES[code];
  return name ? `${code} (${name})` : String(code);
}

/** Default bound on one incoming message: 1 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1 << 20;
/** Default bound on bytes queued for a peer that does not read: 4 MiB. */
export const DEFAULT_MAX_BUFFERED_BYTES = 4 << 20;
/** Default idle time before a ping (half) and a close (the rest): 60 s. */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** Default wait for a close handshake (or a shutdown) before giving up on a peer. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 3_000;
/** Default bound on simultaneous sockets. */
export const DEFAULT_MAX_SOCKETS = 10_000;

/** Which foreign Origins may open a WebSocket: a list of origins, or `"*"` for any. */
export type OriginPolicy = "*" | readonly string[];

/**
 * Parses `--allow-origin` values into an {@link OriginPolicy}: each value is
 * a URL such as `https://example.com` (only its origin counts) or `*`.
 * Throws a `SyntaxError` quoting a value that is no URL.
 */
export function parseAllowedOrigins(values: readonly string[]): OriginPolicy {
  if (values.includes("*")) return "*";
  return values.map((value) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new SyntaxError(
        `Invalid --allow-origin "${value}": expected a URL such as https://host`,
      );
    }
    if (url.origin === "null") {
      throw new SyntaxError(`Invalid --allow-origin "${value}": it has no origin (use http(s)://)`);
    }
    return url.origin;
  });
}

/**
 * Whether a handshake may proceed: no `Origin` header (command-line
 * clients) is allowed, an Origin whose host equals the request's `Host` is
 * allowed, and otherwise the Origin must be in `allowed` (or `allowed` is
 * `"*"`).
 */
export function originAllowed(request: Request, allowed: OriginPolicy = []): boolean {
  const origin = request.headers.get("origin");
  if (origin === null || allowed === "*") return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  const host = request.headers.get("host")?.toLowerCase();
  if (host !== undefined && url.origin !== "null" && url.host === host) return true;
  return allowed.includes(url.origin);
}

/** The UTF-8 size of a message, computed only when it may matter. */
function exceeds(data: string | ArrayBuffer | Blob, max: number): boolean {
  if (typeof data !== "string") return (data instanceof Blob ? data.size : data.byteLength) > max;
  if (data.length > max) return true; // every UTF-16 unit is at least one byte
  if (data.length * 3 <= max) return false; // no unit is more than three bytes
  return new TextEncoder().encode(data).byteLength > max;
}

/** What a server does with its sockets; every callback is optional but `onMessage`. */
export interface WsHandlers {
  /** The socket is open and may send. */
  onOpen?(client: GuardedSocket): void;
  /** A message within the size bound: a string, or an ArrayBuffer for binary. */
  onMessage(client: GuardedSocket, data: string | ArrayBuffer): void;
  /** Called exactly once per socket, whoever closed it. */
  onClose?(client: GuardedSocket, code: number, reason: string): void;
}

/** Options for {@link WsGuard}. */
export interface WsGuardOptions {
  /** Foreign Origins allowed besides the request's own host. Default none. */
  allowOrigins?: OriginPolicy;
  /** Largest incoming message in bytes; larger closes with 1009. Default 1 MiB. */
  maxMessageBytes?: number;
  /** Most bytes queued for a peer; beyond it the peer is closed with 1008. Default 4 MiB. */
  maxBufferedBytes?: number;
  /** Ping after half of this idle, close 1001 after the rest; 0 never. Default 60 s. */
  idleTimeoutMs?: number;
  /** How long a close may take before the socket is given up (reported as 1006). Default 3 s. */
  closeTimeoutMs?: number;
  /** Most open sockets; the next handshake gets 503. Default 10000. */
  maxSockets?: number;
  /** The process's bound on connections (all ports, all workers), checked too. Default none. */
  limit?: ConnectionLimit;
  /** Where the guard reports what it refused or dropped (as errors, shown even when quiet). Default silent. */
  logger?: Logger;
}

/**
 * One accepted WebSocket under a {@link WsGuard}: sends that respect the
 * buffered bound and a close that happens once.
 */
export class GuardedSocket {
  /** The underlying socket, for reading `protocol` and the like; send through this class. */
  readonly socket: WebSocket;
  /** The client's address as `host:port` (never the Host header). */
  readonly peer: string;
  /** Accept order, from 0. */
  readonly id: number;
  #guard: WsGuard;
  #handlers: WsHandlers;
  #closed = false;
  #closingSince = 0;
  /** Bytes sent since `bufferedAmount` was last read. */
  #unchecked = 0;

  constructor(guard: WsGuard, socket: WebSocket, peer: string, id: number, handlers: WsHandlers) {
    this.#guard = guard;
    this.socket = socket;
    this.peer = peer;
    this.id = id;
    this.#handlers = handlers;
  }

  /** Whether the socket has been reported closed (its `onClose` ran). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Whether it is open for sending. */
  get open(): boolean {
    return !this.#closed && this.socket.readyState === WebSocket.OPEN;
  }

  /**
   * Sends a message; returns false if the socket is not open or if this send
   * took the peer's unread bytes past the bound, in which case the peer is
   * closed with 1008 and nothing more is queued for it. The unread bytes
   * are read once per 1/16 of the bound sent (reading them is a call into
   * the runtime), so the bound may be passed by that much.
   */
  send(data: string | ArrayBufferLike | ArrayBufferView | Blob): boolean {
    if (!this.open) return false;
    this.socket.send(data as string);
    this.#unchecked += typeof data === "string"
      ? data.length
      : data instanceof Blob
      ? data.size
      : data.byteLength;
    if (this.#unchecked < this.#guard.maxBufferedBytes >> 4) return true;
    this.#unchecked = 0;
    if (this.socket.bufferedAmount > this.#guard.maxBufferedBytes) {
      this.#guard.logger?.error(
        `${this.peer}: more than ${this.#guard.maxBufferedBytes} bytes unread, closing`,
      );
      this.close(CLOSE_POLICY, "too slow: reader fell behind");
      return false;
    }
    return true;
  }

  /** Starts the close handshake once; later calls do nothing. */
  close(code = CLOSE_NORMAL, reason = ""): void {
    if (this.#closed || this.#closingSince) return;
    this.#closingSince = Date.now();
    try {
      this.socket.close(code, reason);
    } catch {
      // Already closing or closed by the runtime.
    }
  }

  /** Reports the close to the handler once, and forgets the socket. */
  finish(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#guard.forget(this);
    try {
      this.#handlers.onClose?.(this, code, reason);
    } catch (error) {
      this.#guard.logger?.error(`${this.peer}: onClose: ${error}`);
    }
  }

  /** Called by the guard's sweep: gives up a close that is taking too long. */
  sweep(now: number, closeTimeoutMs: number): void {
    if (this.#closed) return;
    if (!this.#closingSince && this.socket.readyState === WebSocket.CLOSING) {
      this.#closingSince = now; // the runtime started it (idle timeout)
    }
    if (this.#closingSince && now - this.#closingSince >= closeTimeoutMs) {
      this.#guard.logger?.error(`${this.peer}: close not completed in ${closeTimeoutMs} ms`);
      this.finish(CLOSE_ABNORMAL, "close timed out");
    } else if (this.open && this.socket.bufferedAmount > this.#guard.maxBufferedBytes) {
      this.close(CLOSE_POLICY, "too slow: reader fell behind");
    }
  }

  /** Wires the socket's events to the handlers. */
  attach(): void {
    const socket = this.socket;
    socket.binaryType = "arraybuffer";
    // This object is the listener: no closure or handler wrapper per
    // socket (about 0.5 KB each of 2000 idle members). An error is always
    // followed by a close event, so it has no listener of its own.
    socket.addEventListener("open", this);
    socket.addEventListener("message", this);
    socket.addEventListener("close", this);
  }

  /** The socket's events (`EventListener`): open, message and close. */
  handleEvent(event: Event): void {
    switch (event.type) {
      case "open":
        try {
          this.#handlers.onOpen?.(this);
        } catch (error) {
          this.#guard.logger?.error(`${this.peer}: onOpen: ${error}`);
          this.close(1011, "server error");
        }
        return;
      case "message":
        this.#message((event as MessageEvent).data);
        return;
      case "close":
        this.finish((event as CloseEvent).code, (event as CloseEvent).reason);
        return;
    }
  }

  #message(data: string | ArrayBuffer): void {
    if (this.#closed || this.#closingSince) return;
    const max = this.#guard.maxMessageBytes;
    if (exceeds(data, max)) {
      this.#guard.logger?.error(`${this.peer}: message above ${max} bytes, closing`);
      this.close(CLOSE_TOO_BIG, `message too big: limit is ${max} bytes`);
      return;
    }
    try {
      this.#handlers.onMessage(this, data);
    } catch (error) {
      this.#guard.logger?.error(`${this.peer}: onMessage: ${error}`);
      this.close(1011, "server error");
    }
  }
}

/**
 * The guard of one WebSocket server: it refuses bad handshakes, upgrades
 * good ones into {@link GuardedSocket}s, owns the set of open sockets, and
 * closes them all on shutdown.
 */
export class WsGuard {
  /** See {@link WsGuardOptions.maxMessageBytes}. */
  readonly maxMessageBytes: number;
  /** See {@link WsGuardOptions.maxBufferedBytes}. */
  readonly maxBufferedBytes: number;
  /** See {@link WsGuardOptions.idleTimeoutMs}. */
  readonly idleTimeoutMs: number;
  /** See {@link WsGuardOptions.closeTimeoutMs}. */
  readonly closeTimeoutMs: number;
  /** See {@link WsGuardOptions.maxSockets}. */
  readonly maxSockets: number;
  /** See {@link WsGuardOptions.logger}. */
  readonly logger: Logger | undefined;
  #allowOrigins: OriginPolicy;
  #sockets = new Set<GuardedSocket>();
  #limit: ConnectionLimit | undefined;
  #nextId = 0;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #idleWaiters: Array<() => void> = [];
  #shuttingDown = false;

  constructor(options: WsGuardOptions = {}) {
    this.#allowOrigins = options.allowOrigins ?? [];
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    this.maxSockets = options.maxSockets ?? DEFAULT_MAX_SOCKETS;
    this.#limit = options.limit;
    this.logger = options.logger;
  }

  /** Open sockets now. */
  get size(): number {
    return this.#sockets.size;
  }

  /** The open sockets (a copy), e.g. for a broadcast. */
  get sockets(): GuardedSocket[] {
    return [...this.#sockets];
  }

  /**
   * Answers a request meant to become a WebSocket: 403 for a foreign
   * Origin, 426 when it is no upgrade, 503 when full or shutting down, and
   * otherwise the 101 response of `Deno.upgradeWebSocket`, with the socket
   * wired to `handlers`. `info` gives the client's address.
   */
  upgrade(request: Request, info: { remoteAddr: Deno.Addr }, handlers: WsHandlers): Response {
    const peer = formatPeer(info.remoteAddr);
    if (!originAllowed(request, this.#allowOrigins)) {
      const origin = request.headers.get("origin");
      this.logger?.error(`${peer}: refused Origin "${origin}" (use --allow-origin to allow it)`);
      return new Response(`Forbidden: Origin "${origin}" is not allowed\n`, { status: 403 });
    }
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("Upgrade Required: this path speaks WebSocket\n", {
        status: 426,
        headers: { upgrade: "websocket", connection: "Upgrade" },
      });
    }
    const full = this.#sockets.size >= this.maxSockets ||
      (this.#limit !== undefined && !this.#limit.tryAcquire());
    if (this.#shuttingDown || full) {
      this.logger?.error(`${peer}: refused, ${this.#sockets.size} sockets open`);
      return new Response("Service Unavailable: too many connections\n", { status: 503 });
    }
    let upgraded: Deno.WebSocketUpgrade;
    try {
      upgraded = Deno.upgradeWebSocket(request, {
        idleTimeout: Math.ceil(this.idleTimeoutMs / 1000),
      });
    } catch (error) {
      this.#limit?.release();
      return new Response(`Bad Request: ${error instanceof Error ? error.message : error}\n`, {
        status: 400,
      });
    }
    const client = new GuardedSocket(this, upgraded.socket, peer, this.#nextId++, handlers);
    this.#sockets.add(client);
    client.attach();
    this.#startSweeper();
    return upgraded.response;
  }

  /**
   * Closes every socket with `code` (default 1001) and resolves once all
   * have closed, or after `closeTimeoutMs`, when the rest are given up.
   * New handshakes get 503 from then on.
   */
  async closeAll(code = CLOSE_GOING_AWAY, reason = "server shutting down"): Promise<void> {
    this.#shuttingDown = true;
    for (const client of this.#sockets) client.close(code, reason);
    if (this.#sockets.size > 0) {
      const allClosed = new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
      await settledWithin(allClosed, this.closeTimeoutMs);
    }
    for (const client of this.#sockets) client.finish(CLOSE_ABNORMAL, "close timed out");
    this.#stopSweeper();
  }

  /** Removes a finished socket; used by {@link GuardedSocket.finish}. */
  forget(client: GuardedSocket): void {
    if (this.#sockets.delete(client)) this.#limit?.release();
    if (this.#sockets.size === 0) {
      this.#stopSweeper();
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  #startSweeper(): void {
    if (this.#sweeper !== undefined) return;
    const every = Math.max(50, Math.min(1_000, this.closeTimeoutMs / 4));
    this.#sweeper = setInterval(() => {
      const now = Date.now();
      for (const client of this.#sockets) client.sweep(now, this.closeTimeoutMs);
    }, every);
  }

  #stopSweeper(): void {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }
}
