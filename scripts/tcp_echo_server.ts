#!/usr/bin/env -S deno run --v8-flags=--max-semi-space-size=2 --allow-net --allow-read --allow-write
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
import { runCommand } from "../lib/cli/cli.ts";
import { runServer } from "../lib/net/lifecycle.ts";
import {
  answerLines,
  clientName,
  LINE_SERVER_OPTIONS,
  type LineServerOptions,
  lineServerSettings,
  serveLineServer,
} from "../lib/net/line_server.ts";
import { writeAll } from "../lib/io/lines.ts";
import { Logger } from "../lib/cli/log.ts";
import { logPayload } from "../lib/io/escape.ts";
import type { Session, TcpServer } from "../lib/net/server.ts";

/** The first read buffer of a connection: small, so idle clients cost little. */
const FIRST_BUFFER_BYTES = 256;
/** Buffers double while reads fill them, up to this size. */
const MAX_BUFFER_BYTES = 64 * 1024;

/** Options for {@link serveEcho}. */
export interface EchoServerOptions extends LineServerOptions {
  /** Answer every line with this text instead of echoing. Default none (echo). */
  reply?: string;
}

/** `data` without its trailing line ending, for the log. */
function trimNewline(data: Uint8Array): Uint8Array {
  let end = data.byteLength;
  while (end > 0 && (data[end - 1] === 0x0a || data[end - 1] === 0x0d)) end--;
  return data.subarray(0, end);
}

/** Echoes bytes as they come; the buffer grows only while the client keeps it full. */
async function echoBytes(session: Session, log: Logger): Promise<void> {
  let buf = new Uint8Array(FIRST_BUFFER_BYTES);
  while (true) {
    const n = await session.read(buf);
    if (n === null) return;
    if (!log.quiet) log.info(`> ${logPayload(trimNewline(buf.subarray(0, n)))}`);
    await writeAll(session.conn, buf.subarray(0, n));
    if (n === buf.byteLength && n < MAX_BUFFER_BYTES) buf = new Uint8Array(n * 2);
  }
}

/** Starts an echo server (or a `--reply` server) and returns its handle. */
export function serveEcho(options: EchoServerOptions = {}): Promise<TcpServer> {
  const log = new Logger({ quiet: options.quiet });
  const reply = options.reply;
  const maxLineBytes = options.maxLineBytes ?? 64 * 1024;
  return serveLineServer(
    async (session) => {
      log.info(`Connection from: ${clientName(session, options)}`);
      try {
        if (reply === undefined) {
          await echoBytes(session, log);
        } else {
          const answer = log.quiet ? reply : (line: string) => {
            log.info(`> ${logPayload(line)}`);
            return reply;
          };
          await answerLines(session, answer, { maxLineBytes, logger: log });
        }
      } finally {
        log.info(`Closed: ${clientName(session, options)}`);
      }
    },
    options,
    log,
  );
}

const spec = {
  name: "tcp_echo_server",
  summary: "Echoes every byte back to each client (or answers each line with --reply TEXT).",
  args: "[ADDR]",
  options: {
    ...LINE_SERVER_OPTIONS,
    reply: {
      type: "string",
      arg: "TEXT",
      description: "answer each line with TEXT instead of echoing",
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
  return runCommand(spec, args, ({ values, positionals }) => {
    const settings = lineServerSettings(values, positionals, { allowUnix: true });
    return runServer(
      settings,
      (run) => serveEcho({ ...settings, ...run, reply: values.reply }),
      { moduleUrl: import.meta.url },
    );
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
