/**
 * The UDP server runner the datagram servers share: several receive loops
 * on one socket, one reply (or none) per datagram, `--rate N` replies per
 * second per source address with a once-per-second log line of what was
 * dropped, graceful shutdown, and the ready line `Listening on udp://H:P`.
 *
 * @module
 */
import type { NetAddress } from "./addr.ts";
import { parseIntOption } from "../cli/cli.ts";
import { Logger } from "../cli/log.ts";
import { LOG_PAYLOAD_BYTES, logPayload } from "../io/escape.ts";
import { printReady, serverOptions, type ServerSettings, serverSettings } from "./lifecycle.ts";

/** The largest UDP payload over IPv4: 65535 - 20 (IP header) - 8 (UDP header). */
export const MAX_UDP_PAYLOAD = 65_507;
/** Each receive loop's buffer: larger than any datagram, so none is truncated. */
export const RECEIVE_BUFFER_BYTES = 65_536;
/**
 * Receives kept pending on the socket at once, so receiving goes on while
 * a reply is being sent. On loopback 1, 8 and 16 measure alike (the send
 * op is the cost); 8 costs 512 KiB of buffers.
 */
export const DEFAULT_RECEIVE_LOOPS = 8;
/** Source addresses the rate limiter tracks per second; beyond it, new sources are dropped. */
export const MAX_TRACKED_SOURCES = 65_536;
/**
 * Source ports never answered: 0 cannot be answered, and the classic UDP
 * services (echo 7, daytime 13, chargen 19, time 37) would answer back and
 * loop forever with a forged datagram, as inetd guards against.
 */
export const LOOP_PORTS: ReadonlySet<number> = new Set([0, 7, 13, 19, 37]);
/** How often the drop summary is logged. */
const REPORT_INTERVAL_MS = 1_000;

/**
 * Counts replies per source address in one-second windows and says
 * whether the next one is allowed; 0 allows everything.
 */
export class RateLimiter {
  /** Replies allowed per source address per window; 0 means no limit. */
  readonly perWindow: number;
  /** Most addresses tracked per window. */
  readonly maxSources: number;
  #counts = new Map<string, number>();
  #dropped = 0;
  #droppedFrom = new Set<string>();

  constructor(perWindow: number, maxSources = MAX_TRACKED_SOURCES) {
    this.perWindow = perWindow;
    this.maxSources = maxSources;
  }

  /** Whether `source` may get one more reply in this window; counts it if so. */
  allow(source: string): boolean {
    if (this.perWindow === 0) return true;
    const count = this.#counts.get(source);
    if (count === undefined) {
      if (this.#counts.size < this.maxSources) {
        this.#counts.set(source, 1);
        return true;
      }
    } else if (count < this.perWindow) {
      this.#counts.set(source, count + 1);
      return true;
    }
    this.#dropped++;
    if (this.#droppedFrom.size < this.maxSources) this.#droppedFrom.add(source);
    return false;
  }

  /** Ends the window: returns what was dropped in it and starts counting afresh. */
  nextWindow(): { dropped: number; sources: number } {
    const result = { dropped: this.#dropped, sources: this.#droppedFrom.size };
    this.#counts.clear();
    this.#droppedFrom.clear();
    this.#dropped = 0;
    return result;
  }
}

/**
 * Renders a datagram for a log line: its payload without the trailing
 * newlines, escaped and cut as {@link logPayload} does (after `maxBytes`,
 * default 200), so a datagram cannot rewrite the terminal.
 */
export function previewDatagram(data: Uint8Array, maxBytes = LOG_PAYLOAD_BYTES): string {
  let end = data.byteLength;
  // All the line ends: the book's udpC.go sends its line's newline plus one of its own.
  while (end > 0 && (data[end - 1] === 0x0a || data[end - 1] === 0x0d)) end--;
  return logPayload(data.subarray(0, end), maxBytes);
}

/**
 * Answers one datagram: returns the reply, or null to send none. `data`
 * is a view into a receive buffer, valid only until the handler returns.
 */
export type DatagramHandler = (data: Uint8Array, peer: Deno.NetAddr, server: UdpServer) =>
  | Uint8Array
  | null;

/** Options for {@link serveUdp}. */
export interface ServeUdpOptions {
  /** Where to listen. Default `0.0.0.0:1234`. */
  address?: NetAddress;
  /** Replies per second per source address; excess datagrams are dropped. 0 no limit. Default 0. */
  rate?: number;
  /** Receives pending at once on the socket. Default {@link DEFAULT_RECEIVE_LOOPS}. */
  receiveLoops?: number;
  /** Aborting it shuts the server down. */
  signal?: AbortSignal;
  /** Diagnostics (the drop summary, send errors). Default a {@link Logger} on stderr. */
  logger?: Logger;
  /** Called once listening. Default prints `Listening on udp://H:P` to stdout. */
  onListen?: (addr: Deno.Addr) => void;
}

/** A running UDP server. */
export class UdpServer implements AsyncDisposable {
  /** Where it listens; with port 0, the port the system chose. */
  readonly addr: Deno.NetAddr;
  /** Resolves when the socket is closed and every receive loop has ended. */
  readonly finished: Promise<void>;
  /** Datagrams received. */
  received = 0;
  /** Replies sent. */
  replied = 0;
  #conn: Deno.DatagramConn;
  #handler: DatagramHandler;
  #limiter: RateLimiter;
  #logger: Logger;
  #stopping = false;
  #timer: ReturnType<typeof setInterval>;
  #ignored = 0;
  #sendErrors = 0;
  #lastSendError = "";

  constructor(conn: Deno.DatagramConn, handler: DatagramHandler, options: ServeUdpOptions) {
    this.#conn = conn;
    this.#handler = handler;
    this.addr = conn.addr as Deno.NetAddr;
    this.#limiter = new RateLimiter(options.rate ?? 0);
    this.#logger = options.logger ?? new Logger();
    this.#timer = setInterval(() => this.#report(), REPORT_INTERVAL_MS);
    const loops = Array.from(
      { length: Math.max(1, options.receiveLoops ?? DEFAULT_RECEIVE_LOOPS) },
      () => this.#receiveLoop(),
    );
    this.finished = Promise.all(loops).then(() => this.#report());
    if (options.signal?.aborted) this.shutdown();
    options.signal?.addEventListener("abort", () => this.shutdown(), { once: true });
  }

  /** Stops receiving and closes the socket; resolves once every loop has ended. */
  shutdown(): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true;
      clearInterval(this.#timer);
      try {
        this.#conn.close();
      } catch {
        // Already closed.
      }
    }
    return this.finished;
  }

  async #receiveLoop(): Promise<void> {
    const buf = new Uint8Array(RECEIVE_BUFFER_BYTES);
    while (!this.#stopping) {
      let data: Uint8Array;
      let peer: Deno.NetAddr;
      try {
        [data, peer] = await this.#conn.receive(buf) as [Uint8Array, Deno.NetAddr];
      } catch (error) {
        if (this.#stopping || error instanceof Deno.errors.BadResource) return;
        // An ICMP error reported on the socket concerns one peer, not the server.
        this.#logger.error(`UDP receive: ${error instanceof Error ? error.message : error}`);
        continue;
      }
      this.received++;
      if (LOOP_PORTS.has(peer.port)) {
        this.#ignored++;
        continue;
      }
      if (!this.#limiter.allow(peer.hostname)) continue;
      let reply: Uint8Array | null;
      try {
        reply = this.#handler(data, peer, this);
      } catch (error) {
        this.#logger.error(`Datagram from ${peer.hostname}:${peer.port}: ${error}`);
        continue;
      }
      if (reply === null || this.#stopping) continue;
      try {
        await this.#conn.send(reply, peer);
        this.replied++;
      } catch (error) {
        if (this.#stopping) return;
        this.#sendErrors++;
        this.#lastSendError = error instanceof Error ? error.message : String(error);
      }
    }
  }

  /** Logs, at most once per interval, what was dropped or failed since the last report. */
  #report(): void {
    const { dropped, sources } = this.#limiter.nextWindow();
    if (dropped > 0) {
      this.#logger.error(
        `Rate limit: dropped ${dropped} datagram${dropped === 1 ? "" : "s"} from ${sources} ` +
          `address${sources === 1 ? "" : "es"} (limit ${this.#limiter.perWindow}/s per address)`,
      );
    }
    if (this.#ignored > 0) {
      this.#logger.error(
        `Ignored ${this.#ignored} datagram${this.#ignored === 1 ? "" : "s"} from ` +
          `source port 0 or a UDP service port (${[...LOOP_PORTS].slice(1).join(", ")})`,
      );
      this.#ignored = 0;
    }
    if (this.#sendErrors > 0) {
      this.#logger.error(
        `Failed to send ${this.#sendErrors} repl${this.#sendErrors === 1 ? "y" : "ies"}: ` +
          this.#lastSendError,
      );
      this.#sendErrors = 0;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }
}

/**
 * Listens on a UDP address and answers each datagram with what `handler`
 * returns, until `signal` aborts or `shutdown()` is called. Throws if the
 * address cannot be bound.
 */
export function serveUdp(handler: DatagramHandler, options: ServeUdpOptions = {}): UdpServer {
  const { hostname = "0.0.0.0", port = 1234 } = options.address ?? {};
  const conn = Deno.listenDatagram({ transport: "udp", hostname, port });
  const server = new UdpServer(conn, handler, options);
  (options.onListen ?? ((addr) => printReady(addr, { protocol: "udp" })))(server.addr);
  return server;
}

/** The command-line options every UDP server takes, for its `CommandSpec`. */
export const UDP_SERVER_OPTIONS = {
  ...serverOptions(["quiet"], { quiet: { description: "print nothing per datagram" } }),
  rate: {
    type: "string",
    arg: "N",
    default: "0",
    description: "replies per second per source address, excess dropped (0 = no limit)",
  },
} as const;

/**
 * Reads a UDP server's address (`[PORT]`, `HOST:PORT` or `--port`, on
 * `--host`, default port 1234) and `--rate`; mistakes are usage errors.
 */
export function parseUdpServerArgs(
  values: { port?: string; host: string; rate: string; quiet?: boolean },
  positionals: string[],
): { settings: ServerSettings; rate: number } {
  const settings = serverSettings(values, positionals, { defaultPort: 1234 });
  return { settings, rate: parseIntOption(values.rate, "rate", { min: 0 }) };
}
