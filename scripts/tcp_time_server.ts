#!/usr/bin/env -S deno run --v8-flags=--max-semi-space-size=2 --allow-net=0.0.0.0,127.0.0.1,localhost,[::],[::1] --allow-read
/**
 * tcp_time_server: answers each line with the local time in RFC 3339 with
 * its offset (`2023-10-09T20:02:55+03:00`), as tcpS.go of seed 000 does,
 * printing `-> line` for every line received. Unlike the seed it serves
 * any number of clients at once; `STOP` ends only that client's
 * connection, unless `--exit-on-stop` asks for the book's behaviour (the
 * whole server exits, printing `Exiting TCP server!`).
 *
 *     deno task tcp_time_server 1234
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
import { Logger } from "../lib/cli/log.ts";
import { printSync } from "../lib/io/print.ts";
import { logPayload } from "../lib/io/escape.ts";
import type { TcpServer } from "../lib/net/server.ts";

/** Options for {@link serveTime}. */
export interface TimeServerOptions extends LineServerOptions {
  /** Shut the whole server down when a client sends `STOP`. Default false. */
  exitOnStop?: boolean;
  /** Where `-> line` goes. Default stdout. */
  print?: (text: string) => void;
}

/** Formats a time as RFC 3339 in local time with its offset: `2023-10-09T20:02:55+03:00`. */
export function rfc3339(date: Date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  const offset = -date.getTimezoneOffset();
  const zone = offset === 0
    ? "Z"
    : `${offset > 0 ? "+" : "-"}${p(Math.floor(Math.abs(offset) / 60))}:${
      p(Math.abs(offset) % 60)
    }`;
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}T` +
    `${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}${zone}`;
}

/** Starts a time server and returns its handle. */
export function serveTime(options: TimeServerOptions = {}): Promise<TcpServer> {
  const log = new Logger({ quiet: options.quiet });
  const print = options.print ?? printSync;
  const controller = new AbortController();
  options.signal?.addEventListener("abort", () => controller.abort(), { once: true });
  return serveLineServer(
    async (session) => {
      log.info(`Connection from: ${clientName(session, options)}`);
      const end = await answerLines(session, (line) => {
        if (!options.quiet) print(`-> ${logPayload(line)}\n`);
        return rfc3339();
      }, { maxLineBytes: options.maxLineBytes, logger: log });
      log.info(`Closed: ${clientName(session, options)}`);
      if (end === "stop" && options.exitOnStop) {
        print("Exiting TCP server!\n");
        controller.abort();
      }
    },
    { ...options, signal: controller.signal },
    log,
  );
}

const spec = {
  name: "tcp_time_server",
  summary: "Answers each line with the local time in RFC 3339 (tcpS.go), many clients at once.",
  args: "[ADDR]",
  options: {
    ...LINE_SERVER_OPTIONS,
    "exit-on-stop": {
      type: "boolean",
      description: "exit the server when a client sends STOP (as in the book)",
    },
  },
  notes: `ADDR is PORT, HOST:PORT or [IPv6]:PORT (default 1234). Each line gets one line
back; a line STOP ends that client's connection.

Examples:
  tcp_time_server 1234
  tcp_time_server --exit-on-stop 127.0.0.1:8000`,
} as const;

/** Runs the time server until SIGINT, SIGTERM (or STOP with --exit-on-stop); returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, ({ values, positionals }) => {
    const settings = lineServerSettings(values, positionals);
    return runServer(
      settings,
      (run) => serveTime({ ...settings, ...run, exitOnStop: values["exit-on-stop"] }),
      { moduleUrl: import.meta.url },
    );
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
