#!/usr/bin/env -S deno run --allow-net --allow-read
/**
 * file_send: sends files to a `file_recv` over TCP, one connection per
 * file (the sender of seed 004's file transfer: name, "ok", content),
 * with the size in the header and the SHA-256 of the whole file in a
 * trailer; it reports success only when the receiver's digest matches its
 * own. A transfer broken half way resumes where it stopped on the next
 * send. Folders go recursively, stdin (`-`) as a stream, and `--plain`
 * speaks to seed 004's own receiver. The protocol is described in
 * lib/file/file_protocol.ts.
 *
 *     deno task file_send localhost:9000 report.pdf photos.tar
 *
 * @module
 */
import { dial } from "../lib/net/dial.ts";
import {
  type ClientConn,
  TLS_CLIENT_OPTIONS,
  type TlsClientSettings,
  tlsClientSettings,
} from "../lib/net/tls.ts";
import { basename, join, resolve } from "node:path";
import { type NetAddress, parseHostPort } from "../lib/net/addr.ts";
import { parseDurationOption, runCommand, usage, UsageError } from "../lib/cli/cli.ts";
import {
  formatOpening,
  formatPrefix,
  formatTrailer,
  MAX_REPLY_BYTES,
  nameProblem,
  parseAnswer,
  parseVerdict,
  quoteName,
  RESUME_KEY_BYTES,
} from "../lib/file/file_protocol.ts";
import { copyHashed, readFull, sha256 } from "../lib/file/hashed_copy.ts";
import { readTokenFile } from "../lib/file/token.ts";
import { LineReader, type Reader, writeAll } from "../lib/io/lines.ts";
import { Logger } from "../lib/cli/log.ts";
import { formatBytes, formatRate, ProgressBoard } from "../lib/cli/progress.ts";
import { isDisconnect } from "../lib/net/server.ts";
import { abortOnSignals } from "../lib/cli/signals.ts";
import { deadline } from "../lib/io/deadline.ts";

/** Give up when the receiver answers nothing, or takes no bytes, for this long. */
const DEFAULT_TIMEOUT_MS = 60_000;
/** Exit code after Ctrl-C or SIGTERM: 128 + SIGINT, as shells report it. */
const EXIT_INTERRUPTED = 130;
/** Chunks of a stream of unknown size: big enough that the 4-byte length costs nothing. */
const STREAM_CHUNK_BYTES = 256 * 1024;
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
  /** Send over TLS, checking the receiver's certificate as these say. Default plain TCP. */
  tls?: TlsClientSettings;
  /** The receiver's token (its --token-file). Default none. */
  token?: string;
  /** Speak seed 004's bare protocol: name, `ok`, content, close; nothing verified. Default false. */
  plain?: boolean;
  /** Aborting it closes the connection: the transfer fails, the receiver keeps what came. */
  signal?: AbortSignal;
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
  /** SHA-256 of the whole file, hex, the same on both sides (unless `verified` is false). */
  hex: string;
  /** False with `plain`: the bare protocol confirms nothing. */
  verified: boolean;
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
  const key = options.plain ? undefined : await resumeKey(file, size);
  const conn = await dial(address, { tls: options.tls, timeoutMs });
  const interrupt = () => conn.close();
  options.signal?.addEventListener("abort", interrupt, { once: true });
  try {
    if (options.plain) return await sendBare(conn, file, name, size, where, options);
    await writeAll(conn, formatOpening({ header: { name, size }, key, token: options.token }));
    const reader = new LineReader(conn, { maxLineBytes: MAX_REPLY_BYTES });
    const answer = async () => {
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
      return answer.offset;
    };
    let offset = await answer();
    let hash = sha256();
    if (offset > 0) {
      if (await copyHashed(file, hash, offset) < offset) {
        throw new Error(`"${path}" shrank while reading it`);
      }
      // Prove that our first bytes are the receiver's; `ok 0` means they are not.
      await writeAll(conn, formatPrefix(hash.copy().digest("hex")));
      const confirmed = await answer();
      if (confirmed !== offset) {
        if (confirmed !== 0) throw new Error(`${where} changed the offset to ${confirmed}`);
        hash = sha256();
        await file.seek(0, Deno.SeekMode.Start);
        offset = 0;
      }
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
    const saved = await finish(conn, hex, verdictLine, where, timeoutMs);
    const seconds = (performance.now() - started) / 1000;
    return { name, saved, size, offset, seconds, hex, verified: true };
  } finally {
    options.signal?.removeEventListener("abort", interrupt);
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

/**
 * Sends the trailer, half-closes, and waits for the receiver's verdict;
 * returns the name it saved, once its digest equals `hex`.
 */
async function finish(
  conn: ClientConn,
  hex: string,
  verdictLine: Promise<string | null>,
  where: string,
  timeoutMs: number,
): Promise<string> {
  await writeAll(conn, formatTrailer(hex)).catch((error) => reasonOr(verdictLine, error));
  await conn.closeWrite();
  const final = await deadline(
    verdictLine,
    timeoutMs,
    `No verdict from ${where} within ${timeoutMs} ms`,
  );
  if (final === null) throw new Error(`${where} closed the connection without a verdict`);
  const verdict = parseVerdict(final);
  if (!verdict.ok) throw new TransferRefused(`Receiver: ${verdict.reason}`);
  if (verdict.hex !== hex) {
    throw new TransferRefused(
      `Digest mismatch: sent sha256 ${hex}, the receiver computed ${verdict.hex}`,
    );
  }
  return verdict.saved;
}

/**
 * Sends a stream of unknown size (a pipe on stdin) as `name`: in chunks,
 * each a 4-byte length and its bytes, then a chunk of length 0 and the
 * trailer. Nothing to resume from: a broken stream is sent again whole.
 */
export async function sendStream(
  address: NetAddress,
  source: Reader,
  name: string,
  options: SendOptions = {},
): Promise<SendResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const problem = nameProblem(name);
  if (problem) throw new Error(`Cannot send as ${quoteName(name)}: ${problem}`);
  const where = `${address.hostname}:${address.port}`;
  const conn = await dial(address, { tls: options.tls, timeoutMs });
  const interrupt = () => conn.close();
  options.signal?.addEventListener("abort", interrupt, { once: true });
  try {
    const header = { name, size: 0, streamed: true };
    await writeAll(conn, formatOpening({ header, token: options.token }));
    const reader = new LineReader(conn, { maxLineBytes: MAX_REPLY_BYTES });
    const line = await deadline(reader.readLine(), timeoutMs, `No answer from ${where}`);
    if (line === null) throw new Error(`${where} closed the connection without an answer`);
    const answer = parseAnswer(line, 0);
    if (!answer.ok) {
      throw new TransferRefused(`Receiver refused ${quoteName(name)}: ${answer.reason}`);
    }
    const verdictLine = reader.readLine();
    verdictLine.catch(() => {});
    const started = performance.now();
    const hash = sha256();
    const board = options.board ?? new ProgressBoard();
    const progress = board.start(name, 0, 0);
    const buf = new Uint8Array(STREAM_CHUNK_BYTES + 4);
    const view = new DataView(buf.buffer);
    let size = 0;
    try {
      while (true) {
        const n = await readFull(source, buf.subarray(4), STREAM_CHUNK_BYTES);
        view.setUint32(0, n);
        hash.update(buf.subarray(4, 4 + n));
        await writeAll(conn, buf.subarray(0, 4 + n)).catch((error) => reasonOr(verdictLine, error));
        size += n;
        progress.advance(n);
        if (n === 0) break;
      }
    } finally {
      progress.finish();
    }
    const hex = hash.digest("hex");
    const saved = await finish(conn, hex, verdictLine, where, timeoutMs);
    const seconds = (performance.now() - started) / 1000;
    return { name, saved, size, offset: 0, seconds, hex, verified: true };
  } finally {
    options.signal?.removeEventListener("abort", interrupt);
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

/** The resume key: SHA-256 of the file's first MiB (all of a smaller file); leaves the file at 0. */
async function resumeKey(file: Deno.FsFile, size: number): Promise<string> {
  const head = new Uint8Array(Math.min(size, RESUME_KEY_BYTES));
  const n = await readFull(file, head, head.byteLength);
  await file.seek(0, Deno.SeekMode.Start);
  return sha256().update(head.subarray(0, n)).digest("hex");
}

/**
 * Seed 004's bare protocol: the name alone, `ok` back (no newline), the
 * content, close. The receiver confirms nothing, so neither can we.
 */
async function sendBare(
  conn: ClientConn,
  file: Deno.FsFile,
  name: string,
  size: number,
  where: string,
  options: SendOptions,
): Promise<SendResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  await writeAll(conn, new TextEncoder().encode(name));
  const reply = await deadline(
    readReply(conn),
    timeoutMs,
    `No "ok" from ${where} within ${timeoutMs} ms`,
  );
  if (reply !== "ok") {
    throw new TransferRefused(
      `Receiver refused ${quoteName(name)}: ${quoteName(reply.trimEnd().slice(0, 200))}`,
    );
  }
  const hash = sha256();
  const started = performance.now();
  const never = new Promise<null>(() => {});
  const sent = await sendContent(conn, file, hash, size, name, 0, {
    board: options.board,
    timeoutMs,
    verdictLine: never,
  });
  if (sent < size) throw new Error(`"${name}" shrank while sending it`);
  await conn.closeWrite();
  const seconds = (performance.now() - started) / 1000;
  return { name, saved: name, size, offset: 0, seconds, hex: hash.digest("hex"), verified: false };
}

/** Reads the bare receiver's reply: what one read brings (the seed writes "ok" at once), "" at end. */
async function readReply(conn: ClientConn): Promise<string> {
  const buf = new Uint8Array(MAX_REPLY_BYTES);
  const n = await conn.read(buf);
  return n === null ? "" : new TextDecoder().decode(buf.subarray(0, n));
}

/** Streams the content with progress and a stall watchdog; returns the bytes sent. */
async function sendContent(
  conn: ClientConn,
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

/** A file to send: where to read it (`-` for a pipe on stdin) and the name to send. */
interface Item {
  path: string;
  name: string;
}

/**
 * The files the command line names: `-` (stdin, named by --as, sent as a
 * stream of unknown size), folders walked
 * recursively (names relative to the folder's parent, `photos/2024/a.jpg`;
 * symlinks skipped, never followed), and files.
 */
async function expandPaths(
  paths: string[],
  as: string | undefined,
  log: (line: string) => void,
): Promise<Item[]> {
  const items: Item[] = [];
  for (const path of paths) {
    if (path === "-") {
      if (as === undefined) throw new UsageError("Reading stdin (-) needs a name: --as NAME");
      items.push({ path: "-", name: as });
      continue;
    }
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(path);
    } catch {
      items.push({ path, name: as ?? basename(path) }); // sendFile reports why
      continue;
    }
    if (!info.isDirectory) {
      items.push({ path, name: as ?? basename(path) });
      continue;
    }
    if (as !== undefined) throw new UsageError("--as names one file, not a folder");
    const before = items.length;
    await walk(path, basename(resolve(path)), items, log);
    if (items.length === before) log(`${path}: no files in this folder`);
  }
  return items;
}

/** Adds the files under `dir` to `items`, in name order, named `prefix/...`. */
async function walk(dir: string, prefix: string, items: Item[], log: (line: string) => void) {
  const entries: Deno.DirEntry[] = [];
  for await (const entry of Deno.readDir(dir)) entries.push(entry);
  entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  for (const entry of entries) {
    const path = join(dir, entry.name);
    const name = `${prefix}/${entry.name}`;
    if (entry.isSymlink) log(`${path}: a symlink, skipped`);
    else if (entry.isDirectory) await walk(path, name, items, log);
    else if (entry.isFile) items.push({ path, name });
    else log(`${path}: not a regular file, skipped`);
  }
}

const spec = {
  name: "file_send",
  summary: "Sends files to a file_recv over TCP, one connection each, verified by SHA-256.",
  args: "HOST:PORT FILE|DIR|-...",
  minArgs: 2,
  maxArgs: Number.MAX_SAFE_INTEGER,
  options: {
    as: {
      type: "string",
      arg: "NAME",
      description: "save the file (or stdin, -) under NAME (one file only)",
    },
    timeout: {
      type: "string",
      arg: "DURATION",
      default: "60s",
      description: "fail when the receiver is silent or takes no bytes this long",
    },
    quiet: { type: "boolean", short: "q", description: "no progress, only the summary" },
    ...TLS_CLIENT_OPTIONS,
    "token-file": {
      type: "string",
      arg: "FILE",
      description: "present the token in FILE to a file_recv --token-file",
    },
    plain: {
      type: "boolean",
      description: "speak seed 004's bare protocol to its receiver (no size, no digest)",
    },
  },
  notes: `A file is saved under its own name (without its folders). A
folder is sent with everything in it, names relative to its parent
(photos/2024/a.jpg; symlinks are skipped). - reads stdin and needs --as NAME;
it is sent in chunks as it comes and cannot resume.
If an earlier transfer of the same file broke, it resumes where it stopped;
after Ctrl-C, run the same command again.
Prints one line per file sent (size, time, throughput, SHA-256) and exits 1
if any file failed.

Examples:
  file_send localhost:9000 report.pdf photos.tar
  file_send 192.0.2.7:9000 build/app.tar.gz --as app-1.2.tar.gz
  file_send localhost:9000 photos/
  tar c src | file_send localhost:9000 - --as src.tar
  file_send --ca ca.pem files.example:9000 report.pdf      (TLS, see docs/tls.md)`,
} as const;

/** Sends the files named on the command line; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, async ({ values, positionals }) => {
    const [target, ...paths] = positionals;
    const address = usage(() => parseHostPort(target, { requireHost: true }));
    if (values.as !== undefined && paths.length > 1) {
      throw new UsageError("--as names one file; give one FILE with it");
    }
    const tls = tlsClientSettings(values);
    const timeoutMs = parseDurationOption(values.timeout, "timeout");
    const token = values["token-file"] === undefined
      ? undefined
      : await readTokenFile(values["token-file"]);
    if (token !== undefined && values.plain) {
      throw new UsageError("--plain sends no token; use one or the other");
    }
    if (timeoutMs <= 0) throw new UsageError(`Invalid --timeout "${values.timeout}": must be > 0`);
    const board = new ProgressBoard({
      tty: values.quiet ? false : undefined,
      log: (line) => log.info(line),
    });
    const log = new Logger({ quiet: values.quiet, sink: board.sink });
    let failed = 0;
    let total = 0;
    const started = performance.now();
    const controller = new AbortController();
    using _signals = abortOnSignals(controller);
    const options = {
      timeoutMs,
      board,
      tls,
      token,
      plain: values.plain,
      signal: controller.signal,
    };
    const items = await expandPaths(paths, values.as, (line) => log.info(line));
    for (const { path, name } of items) {
      try {
        const r = path === "-"
          ? await sendStream(address, Deno.stdin, name, options)
          : await sendFile(address, path, { ...options, name });
        total += r.size - r.offset;
        const notes = (r.saved !== r.name ? `, saved as ${quoteName(r.saved)}` : "") +
          (r.offset > 0 ? `, resumed at ${r.offset}` : "") +
          (r.verified ? "" : ", unverified: the bare receiver confirms nothing");
        console.log(
          `Sent ${path} (${formatBytes(r.size)}, ${r.size} bytes) in ${r.seconds.toFixed(2)} s, ` +
            `${
              formatRate((r.size - r.offset) / Math.max(r.seconds, 1e-6))
            }, sha256 ${r.hex}${notes}`,
        );
      } catch (error) {
        if (controller.signal.aborted) {
          // The bar is gone (the transfer's finish cleared it); the receiver kept what came.
          log.error(`${path}: interrupted; run the same command again to resume`);
          return EXIT_INTERRUPTED;
        }
        failed++;
        log.error(`${path}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    if (items.length > 1) {
      const seconds = (performance.now() - started) / 1000;
      console.log(
        `Sent ${items.length - failed} of ${items.length} files, ${formatBytes(total)} in ` +
          `${seconds.toFixed(2)} s, ${formatRate(total / Math.max(seconds, 1e-6))}`,
      );
    }
    return failed > 0 ? 1 : 0;
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
