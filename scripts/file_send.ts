#!/usr/bin/env -S deno run --allow-net --allow-read
/**
 * file_send: sends files to a `file_recv` over TCP, one connection per
 * file (the sender of seed 004's file transfer: name, "ok", content),
 * with the size in the header and the SHA-256 of the whole file in a
 * trailer; it reports success only when the receiver's digest matches its
 * own. A transfer broken half way resumes where it stopped on the next
 * send. The protocol is described in lib/file/file_protocol.ts.
 *
 *     deno task file_send localhost:9000 report.pdf photos.tar
 *
 * @module
 */
import { basename } from "node:path";
import { type NetAddress, parseHostPort } from "../lib/net/addr.ts";
import { parseDurationOption, runCommand, usage, UsageError } from "../lib/cli/cli.ts";
import {
  formatHeader,
  formatTrailer,
  MAX_REPLY_BYTES,
  nameProblem,
  parseAnswer,
  parseVerdict,
  quoteName,
} from "../lib/file/file_protocol.ts";
import { copyHashed, sha256 } from "../lib/file/hashed_copy.ts";
import { LineReader, writeAll } from "../lib/io/lines.ts";
import { Logger } from "../lib/cli/log.ts";
import { formatBytes, formatRate, ProgressBoard } from "../lib/cli/progress.ts";
import { isDisconnect } from "../lib/net/server.ts";
import { deadline } from "../lib/io/deadline.ts";

/** Give up when the receiver answers nothing, or takes no bytes, for this long. */
const DEFAULT_TIMEOUT_MS = 60_000;
/** After a failed write, how long to wait for the receiver's reason. */
const REASON_WAIT_MS = 2_000;

/** The receiver refused the file or reported a failure; the message says why. */
export class TransferRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TransferRefused";
  }
}

/** Options for {@link sendFile}. */
export interface SendOptions {
  /** Name to save the file as. Default the file's own name. */
  name?: string;
  /** Fail when the receiver is silent, or takes no bytes, this long. Default 60000. */
  timeoutMs?: number;
  /** Where progress goes. Default a board on stderr (bars on a terminal). */
  board?: ProgressBoard;
}

/** What a successful send reports. */
export interface SendResult {
  /** The name sent. */
  name: string;
  /** The name the receiver saved it under (differs with its --rename). */
  saved: string;
  size: number;
  /** Bytes the receiver already had from an earlier, broken transfer. */
  offset: number;
  seconds: number;
  /** SHA-256 of the whole file, hex, the same on both sides. */
  hex: string;
}

/** Sends one file to a receiver and resolves once the receiver has saved it, verified. */
export async function sendFile(
  address: NetAddress,
  path: string,
  options: SendOptions = {},
): Promise<SendResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const info = await Deno.stat(path);
  if (!info.isFile) throw new Error(`"${path}" is not a regular file`);
  const name = options.name ?? basename(path);
  const problem = nameProblem(name);
  if (problem) throw new Error(`Cannot send as ${quoteName(name)}: ${problem}`);
  const size = info.size;
  using file = await Deno.open(path, { read: true });
  const where = `${address.hostname}:${address.port}`;
  const conn = await Deno.connect({ hostname: address.hostname, port: address.port })
    .catch((error) => {
      throw new Error(`Cannot connect to ${where}: ${error.message}`);
    });
  try {
    await writeAll(conn, formatHeader({ name, size }));
    const reader = new LineReader(conn, { maxLineBytes: MAX_REPLY_BYTES });
    const line = await deadline(
      reader.readLine(),
      timeoutMs,
      `No answer from ${where} within ${timeoutMs} ms`,
    );
    if (line === null) throw new Error(`${where} closed the connection without an answer`);
    const answer = parseAnswer(line, size);
    if (!answer.ok) {
      throw new TransferRefused(`Receiver refused ${quoteName(name)}: ${answer.reason}`);
    }
    const offset = answer.offset;
    const hash = sha256();
    if (offset > 0 && await copyHashed(file, hash, offset) < offset) {
      throw new Error(`"${path}" shrank while reading it`);
    }
    // The receiver speaks again only at the end, or to say why it stopped.
    const verdictLine = reader.readLine();
    verdictLine.catch(() => {});
    const started = performance.now();
    const sent = await sendContent(conn, file, hash, size - offset, name, offset, {
      board: options.board,
      timeoutMs,
      verdictLine,
    });
    if (sent < size - offset) throw new Error(`"${path}" shrank while sending it`);
    const hex = hash.digest("hex");
    await writeAll(conn, formatTrailer(hex)).catch((error) => reasonOr(verdictLine, error));
    await conn.closeWrite();
    const final = await deadline(
      verdictLine,
      timeoutMs,
      `No verdict from ${where} within ${timeoutMs} ms`,
    );
    const seconds = (performance.now() - started) / 1000;
    if (final === null) throw new Error(`${where} closed the connection without a verdict`);
    const verdict = parseVerdict(final);
    if (!verdict.ok) throw new TransferRefused(`Receiver: ${verdict.reason}`);
    if (verdict.hex !== hex) {
      throw new TransferRefused(
        `Digest mismatch: sent sha256 ${hex}, the receiver computed ${verdict.hex}`,
      );
    }
    return { name, saved: verdict.saved, size, offset, seconds, hex };
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

/** Streams the content with progress and a stall watchdog; returns the bytes sent. */
async function sendContent(
  conn: Deno.TcpConn,
  file: Deno.FsFile,
  hash: ReturnType<typeof sha256>,
  bytes: number,
  name: string,
  offset: number,
  context: { board?: ProgressBoard; timeoutMs: number; verdictLine: Promise<string | null> },
): Promise<number> {
  const board = context.board ?? new ProgressBoard();
  const progress = board.start(name, offset + bytes, offset);
  let lastProgress = Date.now();
  let stalled = false;
  const watchdog = setInterval(() => {
    if (Date.now() - lastProgress < context.timeoutMs) return;
    stalled = true;
    conn.close(); // the pending write fails; a stalled receiver cannot hang us
  }, Math.min(1_000, context.timeoutMs));
  try {
    return await copyHashed(file, hash, bytes, {
      sink: conn,
      onChunk: (n) => {
        progress.advance(n);
        lastProgress = Date.now();
      },
    });
  } catch (error) {
    if (stalled) throw new Error(`The receiver took no bytes for ${context.timeoutMs} ms`);
    return reasonOr(context.verdictLine, error);
  } finally {
    clearInterval(watchdog);
    progress.finish();
  }
}

/** After a failed write: throws the receiver's `error` line if it sent one, else `error`. */
async function reasonOr(verdictLine: Promise<string | null>, error: unknown): Promise<never> {
  if (!isDisconnect(error)) throw error;
  const line = await deadline(verdictLine, REASON_WAIT_MS, "").catch(() => null);
  if (line?.startsWith("error ")) throw new TransferRefused(`Receiver: ${line.slice(6)}`);
  throw new Error(`Connection lost while sending: ${(error as Error).message}`);
}

const spec = {
  name: "file_send",
  summary: "Sends files to a file_recv over TCP, one connection each, verified by SHA-256.",
  args: "HOST:PORT FILE...",
  minArgs: 2,
  maxArgs: Number.MAX_SAFE_INTEGER,
  options: {
    as: {
      type: "string",
      arg: "NAME",
      description: "save the file under NAME (one file only)",
    },
    timeout: {
      type: "string",
      arg: "DURATION",
      default: "60s",
      description: "fail when the receiver is silent or takes no bytes this long",
    },
    quiet: { type: "boolean", short: "q", description: "no progress, only the summary" },
  },
  notes: `The receiver saves each file under its name (without the folders).
If an earlier transfer of the same file broke, it resumes where it stopped.
Prints one line per file sent (size, time, throughput, SHA-256) and exits 1
if any file failed.

Examples:
  file_send localhost:9000 report.pdf photos.tar
  file_send 192.0.2.7:9000 build/app.tar.gz --as app-1.2.tar.gz`,
} as const;

/** Sends the files named on the command line; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values, positionals }) => {
    const [target, ...paths] = positionals;
    const address = usage(() => parseHostPort(target, { requireHost: true }));
    if (values.as !== undefined && paths.length > 1) {
      throw new UsageError("--as names one file; give one FILE with it");
    }
    const timeoutMs = parseDurationOption(values.timeout, "timeout");
    if (timeoutMs <= 0) throw new UsageError(`Invalid --timeout "${values.timeout}": must be > 0`);
    const board = new ProgressBoard({
      tty: values.quiet ? false : undefined,
      log: (line) => log.info(line),
    });
    const log = new Logger({ quiet: values.quiet, sink: board.sink });
    let failed = 0;
    let total = 0;
    const started = performance.now();
    for (const path of paths) {
      try {
        const r = await sendFile(address, path, { name: values.as, timeoutMs, board });
        total += r.size - r.offset;
        const notes = (r.saved !== r.name ? `, saved as ${quoteName(r.saved)}` : "") +
          (r.offset > 0 ? `, resumed at ${r.offset}` : "");
        console.log(
          `Sent ${path} (${formatBytes(r.size)}, ${r.size} bytes) in ${r.seconds.toFixed(2)} s, ` +
            `${
              formatRate((r.size - r.offset) / Math.max(r.seconds, 1e-6))
            }, sha256 ${r.hex}${notes}`,
        );
      } catch (error) {
        failed++;
        log.error(`${path}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    if (paths.length > 1) {
      const seconds = (performance.now() - started) / 1000;
      console.log(
        `Sent ${paths.length - failed} of ${paths.length} files, ${formatBytes(total)} in ` +
          `${seconds.toFixed(2)} s, ${formatRate(total / Math.max(seconds, 1e-6))}`,
      );
    }
    return failed > 0 ? 1 : 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
