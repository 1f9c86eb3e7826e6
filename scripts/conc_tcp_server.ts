#!/usr/bin/env -S deno run --v8-flags=--max-semi-space-size=2 --allow-net=0.0.0.0,127.0.0.1,localhost,[::],[::1] --allow-read
/**
 * conc_tcp_server: the concurrent TCP server of seed 000 (concTCP.go) with
 * the book's exercises done. It prints `.` for each new client, prints
 * each line it receives (not a `.` per line), and answers each line with
 * `Client number: N`, where N counts the accepted clients from 0. `STOP` ends only that client;
 * SIGINT and SIGTERM stop the server gracefully (exercise 3). Unlike the
 * seed, it reads every line (the seed read one and wrote forever).
 *
 *     deno task conc_tcp_server 1234
 *
 * @module
 */
import { runCommand } from "../lib/cli/cli.ts";
import { runServer } from "../lib/net/lifecycle.ts";
import {
  answerLines,
  LINE_SERVER_OPTIONS,
  type LineServerOptions,
  lineServerSettings,
  serveLineServer,
} from "../lib/net/line_server.ts";
import { Logger } from "../lib/cli/log.ts";
import { printSync } from "../lib/io/print.ts";
import { logPayload } from "../lib/io/escape.ts";
import type { TcpServer } from "../lib/net/server.ts";

/** Options for {@link serveConcurrent}. */
export interface ConcServerOptions extends LineServerOptions {
  /** Where the dots and lines go. Default stdout. */
  print?: (text: string) => void;
}

/** Starts the concurrent server and returns its handle. */
export function serveConcurrent(options: ConcServerOptions = {}): Promise<TcpServer> {
  const log = new Logger({ quiet: options.quiet });
  const print = options.print ?? printSync;
  return serveLineServer(
    async (session) => {
      if (!options.quiet) print(".");
      // Counted across every worker when several serve the port.
      const reply = `Client number: ${options.clients ? options.clients.next() : session.id}`;
      // Quiet, the lines need not even be decoded: the fast path.
      const answer = options.quiet ? reply : (line: string) => {
        print(`${logPayload(line.trim())}\n`);
        return reply;
      };
      await answerLines(session, answer, { maxLineBytes: options.maxLineBytes, logger: log });
    },
    options,
    log,
  );
}

const spec = {
  name: "conc_tcp_server",
  summary: "Answers each line with `Client number: N` (concTCP.go), many clients at once.",
  args: "[ADDR]",
  options: { ...LINE_SERVER_OPTIONS },
  notes: `ADDR is PORT, HOST:PORT or [IPv6]:PORT (default 1234). N counts accepted
clients from 0; a line STOP ends that client's connection.

Examples:
  conc_tcp_server 1234
  conc_tcp_server --max-conns 100 --idle-timeout 5m 127.0.0.1:1234`,
} as const;

/** Runs the concurrent server until SIGINT or SIGTERM; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, ({ values, positionals }) => {
    const settings = lineServerSettings(values, positionals);
    return runServer(
      settings,
      (run) => serveConcurrent({ ...settings, ...run }),
      { moduleUrl: import.meta.url },
    );
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
