#!/usr/bin/env -S deno run --allow-net=0.0.0.0,127.0.0.1,localhost,[::],[::1] --allow-read
/**
 * http_server: the HTTP server of seed 002. Every path is answered with
 * `Hello, you've requested: PATH`.
 *
 *     deno task http_server 8080
 *     deno task http_client http://localhost:8080/hello
 *
 * @module
 */
import type { TlsCertificate } from "../lib/net/tls.ts";
import type { NetAddress } from "../lib/net/addr.ts";
import { runCommand } from "../lib/cli/cli.ts";
import { Logger } from "../lib/cli/log.ts";
import { logPayload } from "../lib/io/escape.ts";
import { type HttpLimits, type HttpServer, serveHttp } from "../lib/net/serve_http.ts";
import { runServer, serverOptions, serverSettings } from "../lib/net/lifecycle.ts";

/** Options for {@link serveHello}. */
export interface HelloServerOptions extends HttpLimits {
  /** Where to listen. Default `0.0.0.0:8080`. */
  address?: NetAddress;
  /** Log nothing per request. Default false. */
  quiet?: boolean;
  /** Aborting it stops the server gracefully. */
  signal?: AbortSignal;
  /** Called once listening. Default prints the ready line. */
  onListen?: (addr: Deno.NetAddr) => void;
  /** Serve HTTPS with this certificate. Default plain HTTP. */
  tls?: TlsCertificate;
}

/** The path as Go's `r.URL.Path` gives it: percent-decoded where that is valid. */
export function requestPath(url: string): string {
  const path = new URL(url).pathname;
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/** Starts the server and returns its handle. */
export function serveHello(options: HelloServerOptions = {}): HttpServer {
  const log = new Logger({ quiet: options.quiet });
  return serveHttp((request, info) => {
    const path = requestPath(request.url);
    const peer = info.remoteAddr;
    if (!log.quiet) log.info(`${peer.hostname}:${peer.port} ${request.method} ${logPayload(path)}`);
    return new Response(`Hello, you've requested: ${path}\n`, {
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  }, {
    address: options.address,
    maxConns: options.maxConns,
    limit: options.limit,
    headTimeoutMs: options.headTimeoutMs,
    bodyTimeoutMs: options.bodyTimeoutMs,
    signal: options.signal,
    tls: options.tls,
    logger: log,
    onListen: options.onListen,
  });
}

const spec = {
  name: "http_server",
  summary: 'Answers every HTTP request with "Hello, you\'ve requested: PATH".',
  args: "[ADDR]",
  options: {
    ...serverOptions(["max-conns", "head-timeout", "body-timeout", "quiet", "cert", "key"], {
      quiet: { description: "log nothing per request" },
    }),
  },
  notes: `ADDR is PORT, HOST:PORT or [IPv6]:PORT (default 8080).

Example:
  http_server 8080 &
  http_client http://localhost:8080/hello
  http_server --cert cert.pem --key key.pem 8443 &     (HTTPS; see docs/tls.md)
  curl --cacert ca.pem https://localhost:8443/hello`,
} as const;

/** Runs the server until SIGINT or SIGTERM; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, ({ values, positionals }) => {
    const settings = serverSettings(values, positionals, { defaultPort: 8080 });
    return runServer(settings, (run) =>
      serveHello({
        address: run.address as NetAddress,
        limit: run.limit,
        headTimeoutMs: settings.headTimeoutMs,
        bodyTimeoutMs: settings.bodyTimeoutMs,
        quiet: values.quiet,
        tls: settings.tls,
        signal: run.signal,
        onListen: run.onListen,
      }), { moduleUrl: import.meta.url, protocol: "http" });
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
