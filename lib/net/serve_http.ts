/**
 * The HTTP server runner the HTTP and WebSocket scripts share: `Deno.serve`
 * on a parsed address, the ready line `Listening on http://H:P`, and a
 * graceful shutdown when a signal aborts (first the caller's own closing,
 * such as closing WebSockets with 1001, then the HTTP server, bounded in
 * time).
 *
 * @module
 */
import type { NetAddress } from "./addr.ts";
import type { Logger } from "../cli/log.ts";
import { settledWithin } from "../io/deadline.ts";
import { HTTP_DRAIN_TIMEOUT_MS, printReady } from "./lifecycle.ts";

/** Options for {@link serveHttp}. */
export interface ServeHttpOptions {
  /** Where to listen. Default `0.0.0.0:8080`. */
  address?: NetAddress;
  /** Aborting it shuts the server down gracefully. */
  signal?: AbortSignal;
  /** Runs first on shutdown, e.g. closing every WebSocket with 1001. */
  beforeShutdown?: () => Promise<void>;
  /** Diagnostics for handler errors. Default: Deno's own (stderr). */
  logger?: Logger;
  /** Called once listening. Default prints `Listening on http://H:P`. */
  onListen?: (addr: Deno.NetAddr) => void;
  /** Share the port with other workers (Linux `SO_REUSEPORT`). Default false. */
  reusePort?: boolean;
}

/** A running HTTP server. */
export interface HttpServer extends AsyncDisposable {
  /** Where it listens; with port 0, the port the system chose. */
  readonly addr: Deno.NetAddr;
  /** Resolves once the server has shut down. */
  readonly finished: Promise<void>;
  /** Runs `beforeShutdown`, stops the HTTP server, and resolves when done. */
  shutdown(): Promise<void>;
}

/** Serves HTTP with `handler` until `signal` aborts or `shutdown()` is called. */
export function serveHttp(
  handler: Deno.ServeHandler<Deno.NetAddr>,
  options: ServeHttpOptions = {},
): HttpServer {
  const address = options.address ?? { transport: "tcp", hostname: "0.0.0.0", port: 8080 };
  const logger = options.logger;
  const server = Deno.serve({
    hostname: address.hostname,
    port: address.port,
    ...(options.reusePort ? { reusePort: true } : {}),
    onListen: () => {},
    onError: (error) => {
      logger?.error(`handler: ${error instanceof Error ? error.message : error}`);
      return new Response("Internal Server Error\n", { status: 500 });
    },
  }, handler);
  const addr = server.addr;
  let stopping: Promise<void> | null = null;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => done = resolve);
  const shutdown = () => {
    stopping ??= (async () => {
      try {
        await options.beforeShutdown?.();
      } finally {
        await settledWithin(server.shutdown(), HTTP_DRAIN_TIMEOUT_MS);
        done();
      }
    })();
    return stopping;
  };
  if (options.signal?.aborted) shutdown();
  options.signal?.addEventListener("abort", shutdown, { once: true });
  (options.onListen ?? ((addr) => printReady(addr, { protocol: "http" })))(addr);
  return { addr, finished, shutdown, [Symbol.asyncDispose]: shutdown };
}
