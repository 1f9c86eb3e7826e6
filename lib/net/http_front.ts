/**
 * An HTTP port that also takes `CONNECT` requests, which `Deno.serve`
 * refuses with 400 (Go's `rpc.DialHTTP` sends `CONNECT /_goRPC_ HTTP/1.0`):
 * a raw TCP front reads the first bytes of each connection, hands CONNECT
 * requests to a handler with the bare connection, and pipes every other
 * connection, bytes untouched, to the HTTP runner (serve_http.ts) on a
 * loopback port. The front holds the connection cap; the first bytes must
 * come within the head deadline, and the runner behind closes a request
 * that passes its head or body deadline, which ends the pipe.
 *
 * @module
 */
import type { NetAddress } from "./addr.ts";
import type { Logger } from "../cli/log.ts";
import { isDisconnect, serveTcp, type Session, type TcpServer } from "./server.ts";
import { HTTP_BUSY_RESPONSE, type HttpLimits, serveHttp } from "./serve_http.ts";
import { DEFAULT_HEAD_TIMEOUT_MS } from "./lifecycle.ts";
import { prependReader, readUntil } from "../io/read_buffer.ts";
import { type Reader, writeAll } from "../io/lines.ts";
import type { TlsCertificate } from "./tls.ts";

/** Longest CONNECT request head read, in bytes: Go's is 28. */
export const MAX_CONNECT_HEAD_BYTES = 4096;
/** How long a CONNECT request may take to arrive, so a stalled one is closed. */
export const CONNECT_HEAD_TIMEOUT_MS = 1_000;
const CONNECT = new TextEncoder().encode("CONNECT ");
/** Each direction of a piped connection starts reading into a buffer this large. */
const PIPE_MIN_BUFFER_BYTES = 512;
/** A busy pipe's buffer grows up to this (at 16 KiB each, 4,000 idle pipes pinned 128 MB). */
const PIPE_MAX_BUFFER_BYTES = 16 * 1024;

/** A CONNECT request: its target (`/_goRPC_`) and the connection, which now carries raw bytes. */
export type ConnectHandler = (
  target: string,
  conn: Reader & { writeAll(data: Uint8Array | string): Promise<void> },
  session: Session,
) => Promise<void>;

/** Options for {@link serveHttpFront}. */
export interface HttpFrontOptions extends HttpLimits {
  /** Where to listen. */
  address: NetAddress;
  /** Aborting it shuts both the front and the HTTP server down. */
  signal?: AbortSignal;
  logger?: Logger;
  /** Called once listening. */
  onListen?: (addr: Deno.Addr) => void;
  /** Told of handler errors; returns the response to send. */
  onError?: (error: unknown) => Response | Promise<Response>;
  /** Serve HTTPS with this certificate: TLS ends at the front, the loopback backend stays plain. */
  tls?: TlsCertificate;
}

/** A running front: the public address and the end of both servers. */
export interface HttpFront {
  readonly addr: Deno.NetAddr;
  readonly tcp: TcpServer;
  readonly finished: Promise<void>;
}

function startsLikeConnect(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, CONNECT.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== CONNECT[i]) return false;
  return true;
}

/** The length of an HTTP head ending in a blank line (LF or CRLF), or -1 while incomplete. */
export function httpHeadLength(bytes: Uint8Array): number {
  for (let i = 0; i + 1 < bytes.length; i++) {
    if (bytes[i] !== 10) continue;
    if (bytes[i + 1] === 10) return i + 2;
    if (bytes[i + 1] === 13 && bytes[i + 2] === 10) return i + 3;
  }
  return -1;
}

/** Serves `handler` over HTTP on `options.address`, and CONNECT requests with `onConnect`. */
export async function serveHttpFront(
  handler: Deno.ServeHandler<Deno.NetAddr>,
  onConnect: ConnectHandler,
  options: HttpFrontOptions,
): Promise<HttpFront> {
  const controller = new AbortController();
  options.signal?.addEventListener("abort", () => controller.abort(), { once: true });
  const headMs = options.headTimeoutMs ?? DEFAULT_HEAD_TIMEOUT_MS;
  const backend = serveHttp(handler, {
    address: { transport: "tcp", hostname: "127.0.0.1", port: 0 },
    // The front counts the connections; each has one behind it.
    maxConns: Number.MAX_SAFE_INTEGER,
    headTimeoutMs: headMs,
    bodyTimeoutMs: options.bodyTimeoutMs,
    signal: controller.signal,
    logger: options.logger,
    onError: options.onError,
    onListen: () => {},
  });
  const logger = options.logger;
  let tcp: TcpServer;
  try {
    tcp = await serveTcp(async (session) => {
      const timer = setTimeout(() => {
        logger?.info(`${session.peer}: nothing sent within ${headMs} ms, closing`);
        session.close();
      }, headMs);
      let head: Uint8Array | null;
      try {
        head = await readUntil(session, () => true, MAX_CONNECT_HEAD_BYTES);
      } finally {
        clearTimeout(timer);
      }
      if (head === null || session.closed) return;
      if (startsLikeConnect(head)) {
        await connect(session, head, onConnect, backend.addr.port, logger);
      } else {
        await pipeToBackend(session, head, backend.addr.port);
      }
    }, {
      address: options.address,
      maxConns: options.maxConns,
      tls: options.tls,
      limit: options.limit,
      busyMessage: HTTP_BUSY_RESPONSE,
      // After CONNECT: a started message must complete in time (the pipes never say started).
      headTimeoutMs: headMs,
      headMessage: "",
      signal: controller.signal,
      logger,
      onListen: options.onListen,
    });
  } catch (error) {
    controller.abort();
    await backend.finished;
    throw error;
  }
  const finished = Promise.all([tcp.finished, backend.finished]).then(() => {});
  return { addr: tcp.addr as Deno.NetAddr, tcp, finished };
}

/**
 * Reads the rest of what may be a CONNECT head (bounded in size and time)
 * and hands over the connection; what turns out to be another request
 * goes to the HTTP server after all.
 */
async function connect(
  session: Session,
  start: Uint8Array,
  onConnect: ConnectHandler,
  backendPort: number,
  logger?: Logger,
): Promise<void> {
  const source = prependReader(start, session);
  const timer = setTimeout(() => session.close(), CONNECT_HEAD_TIMEOUT_MS);
  let head: Uint8Array | null;
  try {
    head = await readUntil(
      source,
      (b) => !startsLikeConnect(b) || httpHeadLength(b) >= 0,
      MAX_CONNECT_HEAD_BYTES,
    );
  } finally {
    clearTimeout(timer);
  }
  if (head === null || session.closed) return;
  if (!startsLikeConnect(head) || head.length < CONNECT.length) {
    await pipeToBackend(session, head, backendPort);
    return;
  }
  const end = httpHeadLength(head);
  if (end < 0) {
    logger?.info(`${session.peer}: CONNECT head over ${MAX_CONNECT_HEAD_BYTES} bytes, closing`);
    await session.closeWith("HTTP/1.0 431 Request Header Fields Too Large\r\n\r\n");
    return;
  }
  const line = new TextDecoder().decode(head.subarray(0, head.indexOf(10))).trim();
  const target = line.split(" ")[1] ?? "";
  const reader = prependReader(head.slice(end), session);
  await onConnect(target, {
    read: (p) => reader.read(p),
    partial: (started) => reader.partial?.(started),
    writeAll: (data) => session.writeAll(data),
  }, session);
}

/** Pipes the connection both ways to the HTTP server on the loopback port. */
async function pipeToBackend(session: Session, head: Uint8Array, port: number): Promise<void> {
  const upstream = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await writeAll(upstream, head);
    const up = pump(session, upstream).finally(() => upstream.closeWrite().catch(() => {}));
    const down = pump(upstream, session.conn).finally(() => session.close());
    await Promise.all([up, down]);
  } finally {
    try {
      upstream.close();
    } catch {
      // Already closed.
    }
  }
}

async function pump(from: Reader, to: Deno.Conn): Promise<void> {
  // Every held connection keeps one read pending each way, so an idle pipe
  // reads into a small buffer; a read that fills it doubles the next one.
  let buf = new Uint8Array(PIPE_MIN_BUFFER_BYTES);
  try {
    for (let n = await from.read(buf); n !== null; n = await from.read(buf)) {
      await writeAll(to, buf.subarray(0, n));
      if (n === buf.byteLength && n < PIPE_MAX_BUFFER_BYTES) {
        buf = new Uint8Array(n * 2);
      } else if (n * 4 <= buf.byteLength && buf.byteLength > PIPE_MIN_BUFFER_BYTES) {
        buf = new Uint8Array(buf.byteLength / 2);
      }
    }
  } catch (error) {
    if (!isDisconnect(error)) throw error;
  }
}
