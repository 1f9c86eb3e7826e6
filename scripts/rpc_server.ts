#!/usr/bin/env -S deno run --allow-net=0.0.0.0,127.0.0.1,localhost,[::],[::1] --allow-read
/**
 * rpc_server: Go's net/rpc (gob) and JSON-RPC over TCP and HTTP, with the
 * seeds' methods (`Arith.Multiply` of seed 002, `Algorithm.Sum` and
 * `Programmer.GetSkill` of seed 001, and `Arith.Divide`). On the TCP port,
 * Go's `rpc.Dial` (gob) and `jsonrpc.Dial` clients call it as they would a
 * Go server (told apart by their first bytes), and JSON-RPC 2.0 clients
 * too (the JSON dialect is detected per request). On the HTTP port, Go's
 * `rpc.DialHTTP` (`CONNECT /_goRPC_`, then gob) and `POST /rpc`.
 *
 *     deno task rpc_server --port 1234 --http-port 8808
 *
 * @module
 */
import { type Address, parseAddress } from "../lib/net/addr.ts";
import type { TlsCertificate } from "../lib/net/tls.ts";
import { readBodyAtMost } from "../lib/io/bounded_read.ts";
import { parseIntOption, runCommand, usage } from "../lib/cli/cli.ts";
import {
  DEFAULT_MAX_VALUE_BYTES,
  JsonSyntaxError,
  JsonTooLargeError,
  JsonValueReader,
} from "../lib/rpc/json_stream.ts";
import {
  checkedInt,
  errorReply,
  INVALID_REQUEST,
  PARSE_ERROR,
  parseMessage,
  RpcError,
  RpcRegistry,
  SERVER_ERROR,
} from "../lib/rpc/jsonrpc.ts";
import { Logger } from "../lib/cli/log.ts";
import type { ConnectionLimit } from "../lib/net/workers.ts";
import { serveTcp, type Session, type TcpServer } from "../lib/net/server.ts";
import {
  DEFAULT_HEAD_TIMEOUT_MS,
  readyLine,
  runServer,
  serverOptions,
  serverSettings,
} from "../lib/net/lifecycle.ts";
import { type HttpFront, serveHttpFront } from "../lib/net/http_front.ts";
import { prependReader, type Reader, readUntil } from "../lib/io/read_buffer.ts";
import { GobError } from "../lib/rpc/gob.ts";
import { GO_RPC_CONNECTED, GO_RPC_PATH, looksLikeGob, serveGob } from "../lib/rpc/gob_rpc.ts";

/** Where HTTP clients post their requests. */
export const RPC_PATH = "/rpc";

/** The seeds' methods, each registered in one line. */
export function seedMethods(registry = new RpcRegistry()): RpcRegistry {
  return registry
    .register(
      "Arith.Multiply",
      { A: "int", B: "int" },
      ({ A, B }) => checkedInt(A * B, `${A}*${B}`),
    )
    .register("Arith.Divide", { A: "int", B: "int" }, ({ A, B }) => {
      // Go's own example (net/rpc's documentation) answers with this text.
      if (B === 0) throw new RpcError(SERVER_ERROR, "divide by zero");
      return { Quo: Math.trunc(A / B), Rem: A % B };
    })
    .register("Algorithm.Sum", { X: "int", Y: "int" }, ({ X, Y }) => checkedInt(X + Y, `${X}+${Y}`))
    .register("Programmer.GetSkill", { Java: "string", Go: "string" }, ({ Java, Go }) =>
      // Exactly as seed 001 builds it, full-width comma and all.
      "Skill1:" + Java + "，Skill2" + Go);
}

/** Options for {@link serveRpc}. */
export interface RpcServerOptions {
  /** The methods to offer. Default {@link seedMethods}. */
  registry?: RpcRegistry;
  /** TCP address. Default `0.0.0.0:1234`. */
  address?: Address;
  /** HTTP address; null for no HTTP server. Default `0.0.0.0:8808`. */
  httpAddress?: Address | null;
  /** Longest request (one JSON value, or one HTTP body) in bytes. Default 262144. */
  maxRequestBytes?: number;
  /** Most simultaneous clients on each port. Default 10000. */
  maxConns?: number;
  /** The process's bound on connections, both ports together; replaces `maxConns`. */
  limit?: ConnectionLimit;
  /**
   * HTTP: deadline for a request head (and an idle keep-alive); TCP: for
   * the rest of a started JSON value or gob message. Default 10 s.
   */
  headTimeoutMs?: number;
  /** HTTP: deadline from a request's head to its answer, body included. Default 30 s. */
  bodyTimeoutMs?: number;
  /** Close TCP clients silent this long; 0 never. Default 0. */
  idleTimeoutMs?: number;
  /** Log nothing per connection. Default false. */
  quiet?: boolean;
  /** Aborting it shuts both servers down gracefully. */
  signal?: AbortSignal;
  /** Called with each server's ready line once it listens. Default prints them. */
  onListen?: (line: string) => void;
  /** Serve both ports over TLS (`tls://`, `https://`) with this certificate. Default plain. */
  tls?: TlsCertificate;
}

/** A running RPC server: its TCP and HTTP addresses and its end. */
export interface RpcServer extends AsyncDisposable {
  /** Where the TCP side listens. */
  readonly addr: Deno.Addr;
  readonly tcp: TcpServer;
  readonly http: HttpFront | null;
  /** Resolves when both servers have stopped. */
  readonly finished: Promise<void>;
  shutdown(): Promise<void>;
}

/** Whether a stream's first byte starts JSON (a value or whitespace before one). */
function startsJson(byte: number): boolean {
  return byte === 0x7b || byte === 0x5b || byte === 0x20 || byte === 0x0a || byte === 0x0d ||
    byte === 0x09;
}

/**
 * Serves one TCP connection in the dialect its first bytes show: gob
 * (Go's `rpc.Dial`) or a stream of JSON values.
 */
async function serveConnection(
  session: Session,
  registry: RpcRegistry,
  maxRequestBytes: number,
  log: Logger,
): Promise<void> {
  const head = await readUntil(session, (b) => startsJson(b[0]) || b.length >= 3, 64);
  if (head === null) return;
  const source = prependReader(head, session);
  if (!startsJson(head[0]) && looksLikeGob(head)) {
    await serveGobSession(session, source, registry, maxRequestBytes, log);
  } else {
    await serveJson(session, source, registry, maxRequestBytes, log);
  }
}

/** Serves Go's gob RPC; undecodable input is logged and the connection closed at once. */
async function serveGobSession(
  session: Session,
  source: Reader,
  registry: RpcRegistry,
  maxRequestBytes: number,
  log: Logger,
): Promise<void> {
  try {
    const conn = {
      read: (p: Uint8Array) => source.read(p),
      partial: (started: boolean) => source.partial?.(started),
      write: (p: Uint8Array) => session.write(p),
    };
    await serveGob(conn, registry, {
      maxMessageBytes: maxRequestBytes,
      onError: (error) => log.info(`${session.peer}: ${error.message}`),
    });
  } catch (error) {
    if (!(error instanceof GobError)) throw error;
    log.info(`${session.peer}: ${error.message}, closing`);
  }
}

/**
 * Serves a stream of JSON values, answering each in order, every reply a
 * read made available leaving in one write, so pipelined requests are
 * answered without waiting for the client.
 */
async function serveJson(
  session: Session,
  source: Reader,
  registry: RpcRegistry,
  maxRequestBytes: number,
  log: Logger,
): Promise<void> {
  const reader = new JsonValueReader(source, { maxValueBytes: maxRequestBytes });
  try {
    for (let items = await reader.readValues(); items; items = await reader.readValues()) {
      const out: string[] = [];
      for (const item of items) {
        let reply = typeof item === "string"
          ? registry.answerText(item)
          : parseErrorReply(item, session, log);
        if (reply instanceof Promise) reply = await reply;
        if (reply !== null) out.push(reply);
      }
      if (out.length > 0) await session.writeAll(out.join("\n") + "\n");
    }
  } catch (error) {
    if (!(error instanceof JsonTooLargeError)) throw error;
    log.info(`${session.peer}: ${error.message}, closing`);
    await session.closeWith(
      errorReply(null, INVALID_REQUEST, `Invalid Request: ${error.message}`) + "\n",
    );
  }
}

function parseErrorReply(error: JsonSyntaxError, session: Session, log: Logger): string {
  log.info(`${session.peer}: ${error.message}`);
  return errorReply(null, PARSE_ERROR, `Parse error: ${error.message}`);
}

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8" };

/** Answers `POST /rpc` with JSON-RPC; other methods 405, other paths 404. */
async function answerHttp(
  request: Request,
  registry: RpcRegistry,
  maxRequestBytes: number,
): Promise<Response> {
  const url = new URL(request.url);
  if (url.pathname !== RPC_PATH) {
    return new Response(`Not found: POST JSON-RPC requests to ${RPC_PATH}\n`, { status: 404 });
  }
  if (request.method !== "POST") {
    return new Response(`Method ${request.method} not allowed: use POST\n`, {
      status: 405,
      headers: { allow: "POST" },
    });
  }
  const body = await readBody(request, maxRequestBytes);
  if (body === null) {
    const message = `Invalid Request: body exceeds the limit of ${maxRequestBytes} bytes`;
    return new Response(errorReply(null, INVALID_REQUEST, message) + "\n", {
      status: 413,
      headers: JSON_HEADERS,
    });
  }
  let message: unknown;
  try {
    message = parseMessage(body);
  } catch (error) {
    const text = errorReply(null, PARSE_ERROR, `Parse error: ${(error as Error).message}`);
    return new Response(text + "\n", { status: 400, headers: JSON_HEADERS });
  }
  const reply = await registry.answer(message);
  if (reply === null) return new Response(null, { status: 204 });
  return new Response(reply + "\n", { headers: JSON_HEADERS });
}

/** Reads a request body as text, or null once it passes `limit` bytes. */
async function readBody(request: Request, limit: number): Promise<string | null> {
  const bytes = await readBodyAtMost(request, limit);
  return bytes && new TextDecoder().decode(bytes);
}

/** The HTTP side's ready line: `Listening on http://H:P/rpc` (`https://` with TLS). */
function httpReadyLine(addr: Deno.NetAddr, tls: boolean): string {
  return readyLine(addr, { protocol: "http", path: RPC_PATH, tls });
}

/** Starts the TCP server and (unless disabled) the HTTP server. */
export async function serveRpc(options: RpcServerOptions = {}): Promise<RpcServer> {
  const log = new Logger({ quiet: options.quiet });
  const registry = options.registry ?? seedMethods();
  const maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_VALUE_BYTES;
  const controller = new AbortController();
  options.signal?.addEventListener("abort", () => controller.abort(), { once: true });
  const onListen = options.onListen ?? ((line: string) => console.log(line));
  const tcp = await serveTcp(async (session) => {
    log.info(`Connection from: ${session.peer}`);
    try {
      await serveConnection(session, registry, maxRequestBytes, log);
    } finally {
      log.info(`Closed: ${session.peer}`);
    }
  }, {
    address: options.address,
    maxConns: options.maxConns,
    limit: options.limit,
    idleTimeoutMs: options.idleTimeoutMs,
    idleMessage: "",
    // Both dialects are binary-safe streams: a text line would only garble them.
    headTimeoutMs: options.headTimeoutMs ?? DEFAULT_HEAD_TIMEOUT_MS,
    headMessage: "",
    signal: controller.signal,
    tls: options.tls,
    logger: log,
    onListen: (addr) => onListen(readyLine(addr, { tls: options.tls !== undefined })),
  });
  let http: HttpFront | null = null;
  const httpAddress = options.httpAddress === undefined
    ? { transport: "tcp", hostname: "0.0.0.0", port: 8808 } as const
    : options.httpAddress;
  if (httpAddress !== null) {
    if (httpAddress.transport !== "tcp") {
      throw new RangeError("The HTTP server needs a TCP address");
    }
    try {
      http = await serveHttpFront(
        (request) => answerHttp(request, registry, maxRequestBytes),
        async (target, conn, session) => {
          if (target !== GO_RPC_PATH) {
            await session.closeWith(
              `HTTP/1.0 404 Not Found\r\n\r\nCONNECT only to ${GO_RPC_PATH}\n`,
            );
            return;
          }
          await conn.writeAll(GO_RPC_CONNECTED);
          await serveGobSession(session, conn, registry, maxRequestBytes, log);
        },
        {
          address: httpAddress,
          maxConns: options.maxConns,
          tls: options.tls,
          limit: options.limit,
          headTimeoutMs: options.headTimeoutMs,
          bodyTimeoutMs: options.bodyTimeoutMs,
          signal: controller.signal,
          logger: log,
          onListen: () => {},
          onError: (error) => {
            log.error("http:", error);
            return new Response("Internal server error\n", { status: 500 });
          },
        },
      );
    } catch (error) {
      controller.abort();
      await tcp.finished;
      throw error;
    }
    onListen(httpReadyLine(http.addr, options.tls !== undefined));
  }
  const finished = Promise.all([tcp.finished, http?.finished]).then(() => {});
  const shutdown = async () => {
    controller.abort();
    await finished;
  };
  return { addr: tcp.addr, tcp, http, finished, shutdown, [Symbol.asyncDispose]: shutdown };
}

const spec = {
  name: "rpc_server",
  summary: "Serves Go's net/rpc (gob), Go's net/rpc/jsonrpc and JSON-RPC 2.0 over TCP and HTTP.",
  args: "",
  maxArgs: 0,
  options: {
    ...serverOptions(
      ["max-conns", "idle-timeout", "head-timeout", "body-timeout", "quiet", "cert", "key"],
      {
        port: { default: "1234", description: "TCP port" },
        "idle-timeout": { description: "close TCP clients silent this long (0 = never)" },
      },
    ),
    "http-port": {
      type: "string",
      arg: "PORT",
      default: "8808",
      description: 'HTTP port for POST /rpc and CONNECT /_goRPC_ ("off" for none)',
    },
    "max-request": {
      type: "string",
      arg: "BYTES",
      default: String(DEFAULT_MAX_VALUE_BYTES),
      description: "longest request (one JSON value or HTTP body)",
    },
  },
  notes: `Methods: Arith.Multiply {A,B}, Arith.Divide {A,B} (integers; replies {Quo,Rem}),
Algorithm.Sum {X,Y} (integers), Programmer.GetSkill {Java,Go}.

TCP carries Go's gob RPC (rpc.Dial) when its first bytes are gob, else a
stream of JSON values, each a request in Go's dialect
({"method","params":[arg],"id"}) or JSON-RPC 2.0 ("jsonrpc":"2.0", batches,
notifications), answered in order, one reply per line. The HTTP port
takes POST /rpc (JSON-RPC) and CONNECT /_goRPC_ (rpc.DialHTTP, then gob).

Examples:
  rpc_server --port 1234 --http-port 8808
  echo '{"method":"Arith.Multiply","params":[{"A":7,"B":8}],"id":0}' | ncat 127.0.0.1 1234
  curl -d '{"jsonrpc":"2.0","method":"Algorithm.Sum","params":[3,4],"id":1}' localhost:8808/rpc
  rpc_server --cert cert.pem --key key.pem     (both ports: tls:// and https://)`,
} as const;

/** Runs the RPC server until SIGINT or SIGTERM; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, ({ values, positionals }) => {
    const settings = serverSettings(values, positionals, { defaultPort: 1234 });
    const httpAddress = values["http-port"] === "off"
      ? null
      : usage(() =>
        parseAddress(values["http-port"], { defaultHost: values.host, allowUnix: false })
      );
    const maxRequestBytes = parseIntOption(values["max-request"], "max-request", { min: 64 });
    const log = new Logger({ quiet: values.quiet });
    return runServer(settings, async (run) => {
      const server = await serveRpc({
        address: run.address,
        httpAddress,
        maxRequestBytes,
        // --max-conns bounds both ports together.
        limit: run.limit,
        idleTimeoutMs: settings.idleTimeoutMs,
        headTimeoutMs: settings.headTimeoutMs,
        bodyTimeoutMs: settings.bodyTimeoutMs,
        quiet: settings.quiet,
        tls: settings.tls,
        signal: run.signal,
        onListen: () => {},
      });
      if (server.addr.transport === "tcp") {
        log.info(`Serving RPC server on port ${server.addr.port}`);
      }
      return server;
    }, {
      moduleUrl: import.meta.url,
      moreReadyLines: ({ http }) =>
        http ? [httpReadyLine(http.addr, settings.tls !== undefined)] : [],
    });
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
