/**
 * The request-per-line loop the line servers share (time, concurrent,
 * random, `--reply` echo): read every line a read made available, answer
 * each with one line, send the answers of a batch in one write, end the
 * connection on the stop word, and turn an over-long line into an error
 * line and a close.
 *
 * @module
 */
import type { Address } from "./addr.ts";
import { type OptionValues, parseIntOption } from "../cli/cli.ts";
import { DEFAULT_MAX_LINE_BYTES, LineReader, LineTooLongError, writeAll } from "../io/lines.ts";
import type { Logger } from "../cli/log.ts";
import { serveTcp, type Session, type SessionHandler, type TcpServer } from "./server.ts";
import type { ConnectionLimit, SharedCounter } from "./workers.ts";
import {
  DEFAULT_HEAD_TIMEOUT_MS,
  serverOptions,
  type ServerSettings,
  serverSettings,
} from "./lifecycle.ts";
import type { TlsCertificate } from "./tls.ts";

/** The word that ends a client's connection, as in the seeds. */
export const STOP_WORD = "STOP";
/** First read buffer of a connection: small, so idle clients cost little; it grows when busy. */
const FIRST_BUFFER_BYTES = 256;
const STOP_BYTES = new TextEncoder().encode(STOP_WORD);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** How {@link answerLines} ended. */
export type LinesEnd = "eof" | "stop" | "too-long";

/** Options for {@link answerLines}. */
export interface AnswerLinesOptions {
  /** Longest accepted line in bytes. Default 65536. */
  maxLineBytes?: number;
  /** A line equal to this (spaces trimmed) ends the connection. Default "STOP"; "" never. */
  stopWord?: string;
  /** Where the stop and the over-long line are reported. Default nowhere. */
  logger?: Logger;
}

/**
 * Answers each line from `session` with the line `answer` returns (its
 * newline is added), a batch of lines in one write, until end of stream or
 * the stop word. An over-long line gets `ERROR <reason>` and the
 * connection is closed; nothing is buffered beyond the bound. When
 * `answer` is a string, every line gets that same reply and lines are
 * never decoded (the fast path for servers that ignore what they read).
 */
export async function answerLines(
  session: Session,
  answer: ((line: string) => string) | string,
  options: AnswerLinesOptions = {},
): Promise<LinesEnd> {
  const stopWord = options.stopWord ?? STOP_WORD;
  const reader = new LineReader(session, {
    maxLineBytes: options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
    initialBufferBytes: FIRST_BUFFER_BYTES,
  });
  try {
    const stopped = typeof answer === "string"
      ? await replyConstant(session, reader, answer, stopWord)
      : await replyEach(session, reader, answer, stopWord);
    if (!stopped) return "eof";
    options.logger?.info(`${session.peer}: ${stopWord}, closing`);
    return "stop";
  } catch (error) {
    if (!(error instanceof LineTooLongError)) throw error;
    options.logger?.info(`${session.peer}: ${error.message}, closing`);
    await session.closeWith(`ERROR ${error.message}\n`);
    return "too-long";
  }
}

/** Answers each decoded line with `answer(line)`; true if the stop word came. */
async function replyEach(
  session: Session,
  reader: LineReader,
  answer: (line: string) => string,
  stopWord: string,
): Promise<boolean> {
  for (let lines = await reader.readLines(); lines; lines = await reader.readLines()) {
    let out = "";
    let stop = false;
    for (const line of lines) {
      if (stopWord !== "" && line.trim() === stopWord) {
        stop = true;
        break;
      }
      out += answer(line) + "\n";
    }
    if (out !== "") await writeAll(session, encoder.encode(out));
    if (stop) return true;
  }
  return false;
}

/** Answers each line with the same bytes, without decoding; true if the stop word came. */
async function replyConstant(
  session: Session,
  reader: LineReader,
  reply: string,
  stopWord: string,
): Promise<boolean> {
  // Made on the first answer, not per connection: idle clients stay cheap.
  let one: Uint8Array | null = null;
  let replies: Uint8Array | null = null; // `one` repeated, grown as batches get bigger
  const stop = stopWord === STOP_WORD ? STOP_BYTES : encoder.encode(stopWord);
  let stopped = false;
  const each = (buf: Uint8Array, start: number, end: number) => {
    stopped = stop.byteLength > 0 && isWord(buf, start, end, stop, stopWord);
    return !stopped;
  };
  for (
    let count = await reader.readLineBytes(each);
    count;
    count = await reader.readLineBytes(each)
  ) {
    const answers = stopped ? count - 1 : count;
    if (answers > 0) {
      one ??= encoder.encode(reply + "\n");
      if (!replies || answers * one.byteLength > replies.byteLength) {
        replies = repeat(one, answers * 2);
      }
      await writeAll(session, replies.subarray(0, answers * one.byteLength));
    }
    if (stopped) return true;
  }
  return false;
}

/** `bytes` repeated `times` times in one buffer. */
function repeat(bytes: Uint8Array, times: number): Uint8Array {
  const out = new Uint8Array(bytes.byteLength * times);
  for (let i = 0; i < times; i++) out.set(bytes, i * bytes.byteLength);
  return out;
}

/** ASCII whitespace as `String.prototype.trim` removes it. */
function isAsciiSpace(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}

/**
 * Whether `buf[start..end)`, trimmed as `String.prototype.trim` does,
 * equals `word`: bytes only, decoding just when non-ASCII bytes (possible
 * Unicode spaces) sit at the edges.
 */
export function isWord(
  buf: Uint8Array,
  start: number,
  end: number,
  word: Uint8Array,
  text: string,
): boolean {
  while (start < end && isAsciiSpace(buf[start])) start++;
  while (end > start && isAsciiSpace(buf[end - 1])) end--;
  if (buf[start] >= 0x80 || buf[end - 1] >= 0x80) {
    return decoder.decode(buf.subarray(start, end)).trim() === text;
  }
  if (end - start !== word.byteLength) return false;
  for (let i = 0; i < word.byteLength; i++) if (buf[start + i] !== word[i]) return false;
  return true;
}

/** The command-line options every line server takes; spread them into a command's spec. */
export const LINE_SERVER_OPTIONS = {
  ...serverOptions(
    ["max-conns", "idle-timeout", "head-timeout", "quiet", "workers", "cert", "key"],
    {
      quiet: { description: "print nothing per connection or line" },
      "head-timeout": {
        description: "close a client that leaves a started line unfinished this long",
      },
    },
  ),
  "max-line": {
    type: "string",
    arg: "BYTES",
    default: String(DEFAULT_MAX_LINE_BYTES),
    description: "longest line accepted",
  },
} as const;

/** What every line server takes; each script's options extend it. */
export interface LineServerOptions {
  /** Where to listen. Default `0.0.0.0:1234`. */
  address?: Address;
  /** Most simultaneous clients. Default 10000. */
  maxConns?: number;
  /** The process's bound on connections (all workers); replaces `maxConns`. Default none. */
  limit?: ConnectionLimit;
  /** Close clients silent this long; 0 never. Default 0. */
  idleTimeoutMs?: number;
  /** Close a client whose started line is unfinished this long; 0 never. Default 10000. */
  headTimeoutMs?: number;
  /** Longest line in bytes. Default 65536. */
  maxLineBytes?: number;
  /** Print nothing per connection or line. Default false. */
  quiet?: boolean;
  /** Aborting it shuts the server down gracefully. */
  signal?: AbortSignal;
  /** Called once listening. Default prints the ready line. */
  onListen?: (addr: Deno.Addr) => void;
  /** Share the port with other workers (`SO_REUSEPORT`). Default false. */
  reusePort?: boolean;
  /** Counts clients across every worker (the book's client number). Default per server. */
  clients?: SharedCounter;
  /** Added to connection logs when several workers serve the port, e.g. `worker 1`. */
  workerTag?: string;
  /** Serve TLS with this certificate (`--cert`/`--key`). Default plain TCP. */
  tls?: TlsCertificate;
}

/** How logs name a client: its address, and its worker when several serve the port. */
export function clientName(session: Session, options: LineServerOptions): string {
  return options.workerTag ? `${session.peer} (${options.workerTag})` : session.peer;
}

/** Starts a line server: `handler` per client, with the bounds of `options`. */
export function serveLineServer(
  handler: SessionHandler,
  options: LineServerOptions,
  logger: Logger,
): Promise<TcpServer> {
  return serveTcp(handler, {
    address: options.address,
    maxConns: options.maxConns,
    limit: options.limit,
    idleTimeoutMs: options.idleTimeoutMs,
    headTimeoutMs: options.headTimeoutMs ?? DEFAULT_HEAD_TIMEOUT_MS,
    signal: options.signal,
    reusePort: options.reusePort,
    tls: options.tls,
    logger,
    onListen: options.onListen,
  });
}

/** What {@link lineServerSettings} reads from the command line. */
export type LineServerSettings = ServerSettings & {
  /** Longest line in bytes (`--max-line`). */
  maxLineBytes: number;
};

/**
 * Reads {@link LINE_SERVER_OPTIONS} and the `[PORT]` argument (also
 * `HOST:PORT`, `[IPv6]:PORT`, and `unix:/path` if `allowUnix`; default
 * 1234); throws a `UsageError` quoting any bad value.
 */
export function lineServerSettings(
  values: OptionValues<typeof LINE_SERVER_OPTIONS>,
  positionals: string[],
  { allowUnix = false } = {},
): LineServerSettings {
  return {
    ...serverSettings(values, positionals, { defaultPort: 1234, allowUnix }),
    maxLineBytes: parseIntOption(values["max-line"], "max-line", { min: 1 }),
  };
}
