/**
 * The client side of an im_server connection: the hello, requests matched
 * to their responses by id (each bounded in time), pushes handed to a
 * callback, and pings that keep an idle session alive.
 *
 * @module
 */
import { LineReader, writeAll } from "../io/lines.ts";
import { deadline } from "../io/deadline.ts";
import { ProtocolError, type RequestId } from "./im_protocol.ts";
import { dial } from "../net/dial.ts";
import type { ClientConn, TlsClientSettings } from "../net/tls.ts";

/** The client accepts long server lines: an online list of thousands of users is one line. */
const MAX_SERVER_LINE_BYTES = 16 * 1024 * 1024;
/** How long a request waits for its response. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Pings go out at this fraction of the server's idle timeout. */
const PING_FRACTION = 1 / 3;
const encoder = new TextEncoder();

/** A line from the server. */
export type ServerLine = Record<string, unknown> & { type: string };

/** The connection to an im_server: requests matched to responses by id, pushes to a callback. */
export class ImConnection {
  readonly conn: ClientConn;
  /** The server's hello line. */
  hello: ServerLine | null = null;
  /** Resolves when the server closes the connection (or it breaks). */
  readonly closed: Promise<void>;
  #pending = new Map<RequestId, (line: ServerLine) => void>();
  #nextId = 1;
  #onPush: (line: ServerLine) => void;
  #pinger: ReturnType<typeof setInterval> | undefined;
  #helloSeen!: () => void;
  #helloPromise = new Promise<void>((resolve) => this.#helloSeen = resolve);
  #isClosed = false;

  private constructor(conn: ClientConn, onPush: (line: ServerLine) => void) {
    this.conn = conn;
    this.#onPush = onPush;
    this.closed = this.#readLoop();
  }

  /** Connects (over TLS when `tls` is given) and waits for the server's hello. */
  static async connect(
    hostname: string,
    port: number,
    onPush: (line: ServerLine) => void,
    tls?: TlsClientSettings,
  ): Promise<ImConnection> {
    const conn = await dial({ transport: "tcp", hostname, port }, { tls });
    const connection = new ImConnection(conn, onPush);
    await Promise.race([connection.#helloPromise, connection.closed]);
    if (!connection.hello) throw new Error(`${hostname}:${port} closed before saying hello`);
    return connection;
  }

  /** Sends a request and resolves with its response (an `error` line included). */
  async request(body: Record<string, unknown>): Promise<ServerLine> {
    if (this.#isClosed) throw new Error("Connection closed");
    const id = this.#nextId++;
    const response = new Promise<ServerLine>((resolve) => this.#pending.set(id, resolve));
    try {
      await writeAll(this.conn, encoder.encode(JSON.stringify({ ...body, id }) + "\n"));
      return await deadline(
        response,
        REQUEST_TIMEOUT_MS,
        `No answer to "${body.type}" within ${REQUEST_TIMEOUT_MS / 1000} s`,
      );
    } finally {
      this.#pending.delete(id);
    }
  }

  /** Like {@link request}, but an `error` response throws a {@link ProtocolError}. */
  async call(body: Record<string, unknown>): Promise<ServerLine> {
    const reply = await this.request(body);
    if (reply.type === "error") {
      throw new ProtocolError(reply.code as never, String(reply.message), reply);
    }
    return reply;
  }

  close(): void {
    clearInterval(this.#pinger);
    if (this.#isClosed) return;
    this.#isClosed = true;
    try {
      this.conn.close();
    } catch {
      // Closed by the peer already.
    }
  }

  async #readLoop(): Promise<void> {
    const reader = new LineReader(this.conn, { maxLineBytes: MAX_SERVER_LINE_BYTES });
    try {
      for await (const text of reader) {
        let line: ServerLine;
        try {
          line = JSON.parse(text);
        } catch {
          continue; // Not the IM protocol; nothing sensible to show.
        }
        if (line.type === "hello" && !this.hello) {
          this.hello = line;
          this.#startPings(Number(line.idle_timeout_ms) || 0);
          this.#helloSeen();
          continue;
        }
        const waiter = line.id === undefined ? undefined : this.#pending.get(line.id as RequestId);
        if (waiter) {
          this.#pending.delete(line.id as RequestId);
          waiter(line);
        } else {
          this.#onPush(line);
        }
      }
    } catch {
      // A reset connection ends like a closed one.
    } finally {
      this.close();
      for (const waiter of this.#pending.values()) {
        waiter({ type: "error", code: "closed", message: "Connection closed by the server" });
      }
      this.#pending.clear();
    }
  }

  #startPings(idleTimeoutMs: number): void {
    if (idleTimeoutMs <= 0) return;
    const every = Math.max(1_000, idleTimeoutMs * PING_FRACTION);
    this.#pinger = setInterval(() => {
      this.request({ type: "ping" }).catch(() => {});
    }, every);
  }
}
