#!/usr/bin/env -S deno run --allow-net --allow-read --allow-write
/**
 * tcp_echo_server: echoes every byte back to each client, on TCP or a unix
 * socket (otherTCPserver.go and socketServer.go of the seeds, serving any
 * number of clients and echoing exactly what came, nothing padded). With
 * `--reply TEXT` it answers every line with TEXT instead (seed 002's
 * "Hello, Client!"), and a `STOP` line ends that client's connection.
 *
 *     deno task tcp_echo_server 1234
 *     deno task tcp_echo_server unix:/tmp/echo.sock
 *
 * @module
 */
import { type Address, parseAddress } from "../lib/addr.ts";
import { parseDurationOption, parseIntOption, runCommand, usage } from "../lib/cli.ts";
import { LineReader, LineTooLongError, writeAll } from "../lib/lines.ts";
import { Logger } from "../lib/log.ts";
import { abortOnSignals, serveTcp, type Session, type TcpServer } from "../lib/server.ts";
import { parseWorkers, serveWorkers } from "../lib/workers.ts";

/** The first read buffer of a connection: small, so idle clients cost little. */
const FIRST_BUFFER_BYTES = 1024;
/** Buffers double while reads fill them, up to this size. */
const MAX_BUFFER_BYTES = 64 * 1024;
const encoder = new TextEncoder();

/** Options for {@link serveEcho}. */
export interface EchoServerOptions {
  /** Where to listen. Default `0.0.0.0:1234`. */
  address?: Address;
  /** Answer every line with this text instead of echoing. Default none (echo). */
  reply?: string;
  /** Most simultaneous clients. Default 10000. */
  maxConns?: number;
  /** Close clients silent this long; 0 never. Default 0. */
  idleTimeoutMs?: number;
  /** Longest line in `reply` mode, in bytes. Default 65536. */
  maxLineBytes?: number;
  /** Print nothing per connection or line. Default false. */
  quiet?: boolean;
  /** Aborting it shuts the server down gracefully. */
  signal?: AbortSignal;
  /** Share the port with other workers (`SO_REUSEPORT`). Default false. */
  reusePort?: boolean;
  /** Names this worker in connection logs when several serve the port. Default none. */
  workerTag?: string;
  /** Called once listening. Default prints the ready line. */
  onListen?: (addr: Deno.Addr) => void;
}

/** Echoes bytes as they come; the buffer grows only while the client keeps it full. */
async function echoBytes(session: Session, log: Logger): Promise<void> {
  let buf = new Uint8Array(FIRST_BUFFER_BYTES);
  while (true) {
    const n = await session.read(buf);
    if (n === null) return;
    if (!log.quiet) log.info(`> ${new TextDecoder().decode(buf.subarray(0, n)).trimEnd()}`);
    await writeAll(session.conn, buf.subarray(0, n));
    if (n === buf.byteLength && n < MAX_BUFFER_BYTES) buf = new Uint8Array(n * 2);
  }
}

/** Answers each line with the same text; `STOP` ends the connection. */
async function replyLines(
  session: Session,
  reply: Uint8Array,
  maxLineBytes: number,
  log: Logger,
): Promise<void> {
  const reader = new LineReader(session, { maxLineBytes });
  try {
    for (let lines = await reader.readLines(); lines; lines = await reader.readLines()) {
      let answers = 0;
      let stop = false;
      for (const line of lines) {
        if (line.trim() === "STOP") {
          stop = true;
          break;
        }
        if (!log.quiet) log.info(`> ${line}`);
        answers++;
      }
      if (answers > 0) await writeAll(session.conn, repeat(reply, answers));
      if (stop) {
        log.info(`${session.peer}: STOP, closing`);
        return;
      }
    }
  } catch (error) {
    if (!(error instanceof LineTooLongError)) throw error;
    log.info(`${session.peer}: ${error.message}, closing`);
    await session.closeWith(`ERROR ${error.message}\n`);
  }
}

function repeat(bytes: Uint8Array, times: number): Uint8Array {
  if (times === 1) return bytes;
  const out = new Uint8Array(bytes.byteLength * times);
  for (let i = 0; i < times; i++) out.set(bytes, i * bytes.byteLength);
  return out;
}

/** Starts an echo server (or a `--reply` server) and returns its handle. */
export function serveEcho(options: EchoServerOptions = {}): Promise<TcpServer> {
  const log = new Logger({ quiet: options.quiet });
  const reply = options.reply === undefined ? null : encoder.encode(options.reply + "\n");
  const maxLineBytes = options.maxLineBytes ?? 64 * 1024;
  const tag = options.workerTag ? ` (${options.workerTag})` : "";
  return serveTcp(async (session) => {
    log.info(`Connection from: ${session.peer}${tag}`);
    try {
      if (reply) await replyLines(session, reply, maxLineBytes, log);
      else await echoBytes(session, log);
    } finally {
      log.info(`Closed: ${session.peer}${tag}`);
    }
  }, {
    address: options.address,
    maxConns: options.maxConns,
    idleTimeoutMs: options.idleTimeoutMs,
    signal: options.signal,
    reusePort: options.reusePort,
    logger: log,
    onListen: options.onListen,
  });
}

const spec = {
  name: "tcp_echo_server",
  summary: "Echoes every byte back to each client (or answers each line with --reply TEXT).",
  args: "[ADDR]",
  options: {
    port: { type: "string", short: "p", arg: "PORT", description: "port to listen on" },
    host: {
      type: "string",
      arg: "HOST",
      default: "0.0.0.0",
      description: "address to listen on",
    },
    reply: {
      type: "string",
      arg: "TEXT",
      description: "answer each line with TEXT instead of echoing",
    },
    "max-conns": {
      type: "string",
      arg: "N",
      default: "10000",
      description: "most clients at once",
    },
    "idle-timeout": {
      type: "string",
      arg: "DURATION",
      default: "0",
      description: "close clients silent this long (0 = never)",
    },
    "max-line": {
      type: "string",
      arg: "BYTES",
      default: "65536",
      description: "longest line with --reply",
    },
    quiet: { type: "boolean", short: "q", description: "log nothing per connection or line" },
    workers: {
      type: "string",
      arg: "N",
      default: "1",
      description: "threads sharing the port (auto = one per CPU)",
    },
  },
  notes: `ADDR is PORT, HOST:PORT, [IPv6]:PORT or unix:/path (default 1234).

Examples:
  tcp_echo_server 1234
  tcp_echo_server unix:/tmp/echo.sock
  tcp_echo_server --reply "Hello, Client!" 127.0.0.1:8000`,
} as const;

/** Runs the echo server until SIGINT or SIGTERM; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values, positionals }) => {
    const address = usage(() =>
      parseAddress(positionals[0] ?? values.port ?? "1234", { defaultHost: values.host })
    );
    const count = parseWorkers(values.workers);
    const options = {
      reply: values.reply,
      maxConns: parseIntOption(values["max-conns"], "max-conns", { min: 1 }),
      idleTimeoutMs: parseDurationOption(values["idle-timeout"], "idle-timeout"),
      maxLineBytes: parseIntOption(values["max-line"], "max-line", { min: 1 }),
      quiet: values.quiet,
    };
    const controller = new AbortController();
    using _signals = abortOnSignals(controller);
    await serveWorkers({
      count,
      moduleUrl: import.meta.url,
      address,
      signal: controller.signal,
      serve: (slot) =>
        serveEcho({
          ...options,
          address: slot.address,
          reusePort: slot.reusePort,
          signal: slot.signal,
          workerTag: count > 1 ? `worker ${slot.id}` : undefined,
          onListen: () => {},
        }),
    });
    return 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
