#!/usr/bin/env -S deno run --v8-flags=--max-semi-space-size=2 --allow-net=0.0.0.0,127.0.0.1,localhost,[::],[::1] --allow-read
/**
 * tcp_random_server: the concurrent random-number server of seed 004 with
 * exercises 1 and 2 of seed 000: each line is answered with a random
 * integer in `--min..--max` (default 1..1000); a client that sends
 * `RANGE A B` gets `OK RANGE A B` and numbers in A..B from then on. Bad
 * input gets `ERROR <reason>` and the connection stays open; `STOP` ends
 * that client's connection.
 *
 *     deno task tcp_random_server 1234
 *
 * @module
 */
import { parseIntOption, runCommand, UsageError } from "../lib/cli/cli.ts";
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

/** Default range, as in the seed's UDP server. */
export const DEFAULT_MIN = 1;
export const DEFAULT_MAX = 1000;

/** Options for {@link serveRandom}. */
export interface RandomServerOptions extends LineServerOptions {
  /** Smallest number sent until a client asks for another range. Default 1. */
  min?: number;
  /** Largest number sent until a client asks for another range. Default 1000. */
  max?: number;
  /** Where `-> line` goes. Default stdout. */
  print?: (text: string) => void;
}

/** An inclusive range of integers. */
export interface Range {
  min: number;
  max: number;
}

/** A uniformly random integer in `range`, both ends included. */
export function randomIn(range: Range): number {
  return range.min + Math.floor(Math.random() * (range.max - range.min + 1));
}

/** Checks that `min..max` is a usable range; returns the reason it is not, or null. */
export function rangeProblem(min: number, max: number): string | null {
  if (min > max) return `${min} is greater than ${max}`;
  if (max - min + 1 > Number.MAX_SAFE_INTEGER) return `range ${min}..${max} is too wide`;
  return null;
}

const INTEGER = /^[-+]?\d{1,16}$/;

/**
 * Answers one line of the protocol and updates `range` for `RANGE A B`:
 * returns `OK RANGE A B`, `ERROR <reason>`, or a random number.
 */
export function answerRandom(line: string, range: Range): string {
  const words = line.trim().split(/\s+/);
  if (words[0].toUpperCase() !== "RANGE") return String(randomIn(range));
  if (words.length !== 3) return "ERROR usage: RANGE A B, with integers A <= B";
  const [a, b] = [words[1], words[2]];
  for (const word of [a, b]) {
    if (!INTEGER.test(word) || !Number.isSafeInteger(Number(word))) {
      return `ERROR "${word}" is not an integer`;
    }
  }
  const min = Number(a);
  const max = Number(b);
  const problem = rangeProblem(min, max);
  if (problem) return `ERROR ${problem}`;
  range.min = min;
  range.max = max;
  return `OK RANGE ${min} ${max}`;
}

/** Starts a random-number server and returns its handle. */
export function serveRandom(options: RandomServerOptions = {}): Promise<TcpServer> {
  const min = options.min ?? DEFAULT_MIN;
  const max = options.max ?? DEFAULT_MAX;
  const problem = rangeProblem(min, max);
  if (problem) throw new RangeError(`Invalid range: ${problem}`);
  const log = new Logger({ quiet: options.quiet });
  const print = options.print ?? printSync;
  return serveLineServer(
    async (session) => {
      log.info(`Connection from: ${clientName(session, options)}`);
      const range = { min, max };
      await answerLines(session, (line) => {
        if (!options.quiet) print(`-> ${logPayload(line)}\n`);
        return answerRandom(line, range);
      }, { maxLineBytes: options.maxLineBytes, logger: log });
      log.info(`Closed: ${clientName(session, options)}`);
    },
    options,
    log,
  );
}

const spec = {
  name: "tcp_random_server",
  summary: "Answers each line with a random integer; RANGE A B picks the range per client.",
  args: "[ADDR]",
  options: {
    ...LINE_SERVER_OPTIONS,
    min: { type: "string", arg: "N", default: String(DEFAULT_MIN), description: "smallest number" },
    max: { type: "string", arg: "N", default: String(DEFAULT_MAX), description: "largest number" },
  },
  notes: `ADDR is PORT, HOST:PORT or [IPv6]:PORT (default 1234).

Protocol, one line each way:
  any line      a random integer in the client's range
  RANGE A B     OK RANGE A B, then numbers in A..B (A <= B, integers)
  STOP          closes that client's connection
Bad input gets ERROR <reason>; the connection stays open.

Examples:
  tcp_random_server 1234
  tcp_random_server --min 1 --max 6 127.0.0.1:1234`,
} as const;

/** Runs the random-number server until SIGINT or SIGTERM; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, ({ values, positionals }) => {
    const settings = lineServerSettings(values, positionals);
    const bound = { min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER };
    const min = parseIntOption(values.min, "min", bound);
    const max = parseIntOption(values.max, "max", bound);
    const problem = rangeProblem(min, max);
    if (problem) throw new UsageError(`Invalid --min "${min}" and --max "${max}": ${problem}`);
    return runServer(
      settings,
      (run) => serveRandom({ ...settings, ...run, min, max }),
      { moduleUrl: import.meta.url },
    );
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
