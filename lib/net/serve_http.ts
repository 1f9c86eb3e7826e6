/**
 * The HTTP server runner the HTTP and WebSocket scripts share: HTTP/1.1 on
 * the TCP runner's accept loop (so `--max-conns` bounds it like every
 * other port), a deadline for each request head, a total deadline for each
 * request body, HTTPS with `tls`, the ready line `Listening on http://H:P`
 * (`https://`), and a graceful
 * shutdown when a signal aborts (first the caller's own closing, such as
 * closing WebSockets with 1001, then the HTTP connections, bounded in
 * time).
 *
 * `Deno.serve` cannot bound a connection: it has no head or body timeout,
 * no connection cap, and a request whose body stalls keeps its connection
 * open even after the handler answered (tested with Deno 2.9: a cancelled
 * body, a `Connection: close` reply and a reply whose body errors all
 * leave the socket open). `Deno.serveHttp(conn)` serves one accepted
 * connection, and closing that HTTP connection closes the socket, so the
 * runner owns accept, the count and the deadlines.
 *
 * @module
 */
import type { NetAddress } from "./addr.ts";
import { formatPeer } from "./addr.ts";
import { Logger } from "../cli/log.ts";
import { type Session, TcpServer } from "./server.ts";
import type { ConnectionLimit } from "./workers.ts";
import type { TlsCertificate } from "./tls.ts";
import {
  DEFAULT_BODY_TIMEOUT_MS,
  DEFAULT_HEAD_TIMEOUT_MS,
  HTTP_DRAIN_TIMEOUT_MS,
  printReady,
} from "./lifecycle.ts";

const BUSY_TEXT = "Too many connections, try again later\n";
/** Sent to a connection over the cap, before it is closed. */
export const HTTP_BUSY_RESPONSE = "HTTP/1.1 503 Service Unavailable\r\n" +
  "Content-Type: text/plain; charset=utf-8\r\n" +
  `Content-Length: ${BUSY_TEXT.length}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n` +
  BUSY_TEXT;

/** The bounds of an HTTP port (`--max-conns`, `--head-timeout`, `--body-timeout`). */
export interface HttpLimits {
  /** Most simultaneous connections; the next gets a 503 and is closed. Default 10000. */
  maxConns?: number;
  /** The process's bound on connections (all ports, all workers); replaces `maxConns`. */
  limit?: ConnectionLimit;
  /** Deadline for a complete request head (and for an idle keep-alive). Default 10 s. */
  headTimeoutMs?: number;
  /** Deadline from a request's head to its answer, body included. Default 30 s. */
  bodyTimeoutMs?: number;
}

/** Options for {@link serveHttp}. */
export interface ServeHttpOptions extends HttpLimits {
  /** Where to listen. Default `0.0.0.0:8080`. */
  address?: NetAddress;
  /** Aborting it shuts the server down gracefully. */
  signal?: AbortSignal;
  /** Runs first on shutdown, e.g. closing every WebSocket with 1001. */
  beforeShutdown?: () => Promise<void>;
  /** Diagnostics: handler errors and closed connections. Default a quiet {@link Logger}. */
  logger?: Logger;
  /** Called once listening. Default prints `Listening on http://H:P`. */
  onListen?: (addr: Deno.NetAddr) => void;
  /** Share the port with other workers (Linux `SO_REUSEPORT`). Default false. */
  reusePort?: boolean;
  /** Told of a handler's error; returns the response. Default logs it and answers 500. */
  onError?: (error: unknown) => Response | Promise<Response>;
  /** Serve HTTPS (and so wss://) with this certificate. Default plain HTTP. */
  tls?: TlsCertificate;
}

/** A running HTTP server. */
export interface HttpServer extends AsyncDisposable {
  /** Where it listens; with port 0, the port the system chose. */
  readonly addr: Deno.NetAddr;
  /** Resolves once the server has shut down. */
  readonly finished: Promise<void>;
  /** Connections open now (upgraded WebSockets leave the count). */
  readonly connections: number;
  /** Runs `beforeShutdown`, stops the HTTP server, and resolves when done. */
  shutdown(): Promise<void>;
}

/** One request as `Deno.serveHttp` hands it over. */
interface RequestEvent {
  readonly request: Request;
  respondWith(response: Response | Promise<Response>): Promise<void>;
}

/** One HTTP/1.1 connection served by `Deno.serveHttp`; closing it closes the socket. */
interface HttpConn {
  nextRequest(): Promise<RequestEvent | null>;
  close(): void;
}

/** `Deno.serveHttp`: still in the runtime, no longer in its type declarations. */
function serveHttpConn(conn: Deno.Conn): HttpConn {
  const serve = (Deno as unknown as { serveHttp?: (conn: Deno.Conn) => HttpConn }).serveHttp;
  if (typeof serve !== "function") {
    throw new Error("This Deno has no Deno.serveHttp, which the HTTP runner needs");
  }
  return serve(conn);
}

/** Serves HTTP with `handler` until `signal` aborts or `shutdown()` is called. */
export function serveHttp(
  handler: Deno.ServeHandler<Deno.NetAddr>,
  options: ServeHttpOptions = {},
): HttpServer {
  const address = options.address ?? { transport: "tcp", hostname: "0.0.0.0", port: 8080 };
  const logger = options.logger ?? new Logger({ quiet: true });
  const headMs = options.headTimeoutMs ?? DEFAULT_HEAD_TIMEOUT_MS;
  const bodyMs = options.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS;
  const controller = new AbortController();
  const listen = {
    transport: "tcp",
    hostname: address.hostname,
    port: address.port,
    ...(options.reusePort ? { reusePort: true } : {}),
  } as const;
  // A TLS handshake happens on the first read, inside the head deadline.
  const tls = options.tls;
  const listener = tls
    ? Deno.listenTls({ ...listen, cert: tls.cert, key: tls.key })
    : Deno.listen(listen);
  const tcp = new TcpServer(
    listener,
    (session) => serveConnection(session, handler, headMs, bodyMs, logger, options.onError),
    {
      maxConns: options.maxConns,
      limit: options.limit,
      busyMessage: HTTP_BUSY_RESPONSE,
      // Each connection closes itself this long after the signal; the TCP
      // runner's own drain only has to wait for that.
      drainTimeoutMs: HTTP_DRAIN_TIMEOUT_MS * 2,
      signal: controller.signal,
      logger,
    },
  );
  const addr = tcp.addr as Deno.NetAddr;
  let stopping: Promise<void> | null = null;
  const shutdown = () => {
    stopping ??= (async () => {
      try {
        await options.beforeShutdown?.();
      } finally {
        controller.abort();
        await tcp.finished;
      }
    })();
    return stopping;
  };
  if (options.signal?.aborted) shutdown();
  options.signal?.addEventListener("abort", shutdown, { once: true });
  (options.onListen ?? ((addr) => printReady(addr, { protocol: "http", tls: tls !== undefined })))(
    addr,
  );
  return {
    addr,
    finished: tcp.finished,
    get connections() {
      return tcp.connections;
    },
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}

/**
 * Serves one connection's requests in turn. The head deadline runs while it
 * waits for a request, the body deadline from a head to its response;
 * either expiring closes the connection, as does shutdown once no request
 * is in flight (or {@link HTTP_DRAIN_TIMEOUT_MS} later).
 */
async function serveConnection(
  session: Session,
  handler: Deno.ServeHandler<Deno.NetAddr>,
  headMs: number,
  bodyMs: number,
  logger: Logger,
  onError?: (error: unknown) => Response | Promise<Response>,
): Promise<void> {
  const http = serveHttpConn(session.conn);
  const remoteAddr = session.conn.remoteAddr as Deno.NetAddr;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    try {
      http.close();
    } catch {
      // Already closed by the peer or the runtime.
    }
  };
  let busy = false;
  let shutdownTimer: ReturnType<typeof setTimeout> | undefined;
  const onAbort = () => {
    if (!busy) close();
    else shutdownTimer = setTimeout(close, HTTP_DRAIN_TIMEOUT_MS);
  };
  session.signal.addEventListener("abort", onAbort, { once: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expire = (what: string, ms: number) => () => {
    logger.info(`${formatPeer(remoteAddr)}: no ${what} within ${ms} ms, closing`);
    close();
  };
  try {
    while (!closed && !session.signal.aborted) {
      timer = setTimeout(expire("complete request head", headMs), headMs);
      const event = await http.nextRequest().catch(() => null);
      clearTimeout(timer);
      if (event === null || closed) break;
      busy = true;
      timer = setTimeout(expire("complete request", bodyMs), bodyMs);
      const done = Promise.withResolvers<void>();
      try {
        let response: Response;
        try {
          response = await handler(event.request, { remoteAddr, completed: done.promise });
        } catch (error) {
          if (closed) break;
          if (onError) {
            response = await onError(error);
          } else {
            logger.error(`handler: ${error instanceof Error ? error.message : error}`);
            response = new Response("Internal Server Error\n", { status: 500 });
          }
        }
        clearTimeout(timer);
        await event.respondWith(response).catch(() => {});
      } finally {
        clearTimeout(timer);
        done.resolve();
        busy = false;
      }
    }
  } finally {
    clearTimeout(timer);
    clearTimeout(shutdownTimer);
    session.signal.removeEventListener("abort", onAbort);
    close();
  }
}
