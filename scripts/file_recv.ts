#!/usr/bin/env -S deno run --allow-net=0.0.0.0,127.0.0.1,localhost,[::],[::1] --allow-read --allow-write
/**
 * file_recv: receives files over TCP into one directory, any number of
 * senders at once, one file per connection (the receiver of seed 004's
 * file transfer, made safe): only plain file names, content written to
 * `NAME.part` and renamed into place once size and SHA-256 match, a broken
 * transfer resumed from its `.part`, existing files never overwritten
 * silently. The protocol is described in lib/file/file_protocol.ts.
 *
 *     deno task file_recv 9000 --dir ./inbox
 *
 * Permissions: the task grants `--allow-read --allow-write` without a
 * path because DIR is chosen on the command line at run time, and Deno
 * cannot narrow a grant once the program runs. Who knows DIR in advance
 * runs `deno run --allow-net --allow-read=DIR --allow-write=DIR
 * scripts/file_recv.ts --dir DIR`; the receiver checks at start that it
 * may read and write DIR. The code never touches a path outside DIR:
 * names must be plain names and symlinks are never followed.
 *
 * @module
 */
import { join, resolve } from "node:path";
import type { Address } from "../lib/net/addr.ts";
import { runCommand, UsageError } from "../lib/cli/cli.ts";
import {
  errorLine,
  MAX_HEADER_BYTES,
  MAX_NAME_BYTES,
  MAX_REPLY_BYTES,
  nameProblem,
  numberedName,
  parseHeader,
  parseTrailer,
  PART_SUFFIX,
  ProtocolError,
  quoteName,
} from "../lib/file/file_protocol.ts";
import { copyHashed, sha256 } from "../lib/file/hashed_copy.ts";
import { LineReader, LineTooLongError } from "../lib/io/lines.ts";
import { Logger } from "../lib/cli/log.ts";
import { formatBytes, ProgressBoard } from "../lib/cli/progress.ts";
import { serveTcp, type Session, type TcpServer } from "../lib/net/server.ts";
import { runServer, serverOptions, serverSettings } from "../lib/net/lifecycle.ts";
import type { ConnectionLimit } from "../lib/net/workers.ts";

/** A sender silent this long is dropped; its `.part` stays for a resume. */
const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** Each transfer holds eight 256 KiB buffers (2 MiB), so 32 at once cost 64 MiB. */
const DEFAULT_MAX_CONNS = 32;
/** How many `name (N).ext` candidates --rename tries. */
const MAX_RENAME_TRIES = 10_000;
const encoder = new TextEncoder();

/** What to do when a file of the same name is already in DIR. */
export type ExistingPolicy = "refuse" | "overwrite" | "rename";

/** A file saved by the receiver. */
export interface SavedFile {
  /** Where it was saved. */
  path: string;
  size: number;
  /** SHA-256, hex. */
  hex: string;
  /** The sender, `host:port`. */
  peer: string;
  /** Bytes taken from an earlier `.part`. */
  resumedAt: number;
}

/** Options for {@link serveFiles}. */
export interface ReceiverOptions {
  /** Where to listen. Default `0.0.0.0:1234`. */
  address?: Address;
  /** Largest file accepted, in bytes. Default none. */
  maxSize?: number;
  /** What to do with a name that exists. Default "refuse". */
  existing?: ExistingPolicy;
  /** Most simultaneous senders. Default 32. */
  maxConns?: number;
  /** The process's bound on connections; replaces `maxConns`. Default none. */
  limit?: ConnectionLimit;
  /** Drop a sender silent this long; 0 never. Default 60000. */
  idleTimeoutMs?: number;
  /** Log only errors. Default false. */
  quiet?: boolean;
  /** Flush each file to disk before saying it is saved. Default false. */
  fsync?: boolean;
  /** Progress bars; default when stderr is a terminal. */
  progress?: boolean;
  /** Aborting it shuts the receiver down gracefully. */
  signal?: AbortSignal;
  /** Called once listening. Default prints the ready line. */
  onListen?: (addr: Deno.Addr) => void;
  /** Called for each saved file. Default prints `Saved PATH (...) from PEER` to stdout. */
  onSaved?: (saved: SavedFile) => void;
}

/** A refusal or a failed transfer; its message goes to the sender as `error <message>`. */
class TransferError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TransferError";
  }
}

/** The names a transfer writes: the final one and its `.part`. */
interface Target {
  final: string;
  part: string;
}

/** The `.part` name for a final name; a short digest-based one when the name is near the limit. */
function partName(final: string): string {
  const part = final + PART_SUFFIX;
  if (encoder.encode(part).byteLength <= MAX_NAME_BYTES) return part;
  return `${sha256().update(final).digest("hex").slice(0, 32)}${PART_SUFFIX}`;
}

/** Receives files into one directory; one instance owns the set of names in use. */
class Receiver {
  readonly dir: string;
  #options: ReceiverOptions;
  #log: Logger;
  #board: ProgressBoard;
  /** Final and `.part` names that a transfer in flight writes. */
  #claimed = new Set<string>();

  constructor(dir: string, options: ReceiverOptions, log: Logger, board: ProgressBoard) {
    this.dir = dir;
    this.#options = options;
    this.#log = log;
    this.#board = board;
  }

  /** Serves one connection: one file. */
  async handle(session: Session): Promise<void> {
    const reader = new LineReader(session, { maxLineBytes: MAX_HEADER_BYTES });
    const line = await readBoundedLine(reader);
    if (line === TOO_LONG) {
      return this.#refuse(session, `Header line over ${MAX_HEADER_BYTES} bytes`);
    }
    if (line === null) {
      this.#log.info(`${session.peer}: closed without sending a header`);
      return;
    }
    let header;
    try {
      header = parseHeader(line, this.#options.maxSize);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      return this.#refuse(session, error.message);
    }
    if (reader.buffered > 0) {
      return this.#refuse(session, "Content sent before the answer to the header");
    }
    let target: Target;
    try {
      target = await this.#claim(header.name);
    } catch (error) {
      if (!(error instanceof TransferError)) throw error;
      return this.#refuse(session, error.message);
    }
    try {
      await this.#receive(session, header.name, header.size, target);
    } finally {
      this.#claimed.delete(target.final);
      this.#claimed.delete(target.part);
    }
  }

  async #refuse(session: Session, reason: string): Promise<void> {
    this.#log.info(`${session.peer}: ${reason}`);
    await session.closeWith(errorLine(reason));
  }

  /** Picks the names to write, by the existing-file policy, and marks them in use. */
  async #claim(name: string): Promise<Target> {
    const policy = this.#options.existing ?? "refuse";
    let final = name;
    for (let n = 1;; n++) {
      const busy = this.#claimed.has(final) || this.#claimed.has(partName(final));
      if (!busy && (policy === "overwrite" || !(await this.#exists(final)))) break;
      if (policy !== "rename") {
        throw new TransferError(
          busy
            ? `${quoteName(final)} is being received from another sender`
            : `${quoteName(final)} exists (the receiver runs without --overwrite or --rename)`,
        );
      }
      final = numberedName(name, n);
      if (n > MAX_RENAME_TRIES || nameProblem(final)) {
        throw new TransferError(`No free name for ${quoteName(name)} in the receiver's directory`);
      }
    }
    const target = { final, part: partName(final) };
    this.#claimed.add(target.final);
    this.#claimed.add(target.part);
    return target;
  }

  async #exists(name: string): Promise<boolean> {
    try {
      await Deno.lstat(join(this.dir, name)); // a symlink, even dangling, exists
      return true;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return false;
      throw error;
    }
  }

  async #receive(session: Session, name: string, size: number, target: Target): Promise<void> {
    const partPath = join(this.dir, target.part);
    const hash = sha256();
    let opened: { file: Deno.FsFile; offset: number };
    try {
      opened = await this.#openPart(partPath, target.part, size, hash, session);
    } catch (error) {
      if (!(error instanceof TransferError)) throw error;
      return this.#refuse(session, error.message);
    }
    const { file, offset } = opened;
    let fileOpen = true;
    const closeFile = () => {
      if (fileOpen) file.close();
      fileOpen = false;
    };
    // A transfer broken before all bytes came keeps its .part for a resume;
    // complete but wrong bytes are discarded.
    let keepPart = true;
    try {
      await session.writeAll(offset > 0 ? `ok ${offset}\n` : "ok\n");
      this.#log.info(
        `${session.peer}: receiving ${quoteName(name)}, ${size} bytes` +
          (offset > 0 ? `, resuming at ${offset}` : ""),
      );
      const progress = this.#board.start(name, size, offset);
      let got: number;
      try {
        got = await copyHashed(session, hash, size - offset, {
          sink: file,
          onChunk: (n) => progress.advance(n),
        });
      } finally {
        progress.finish();
      }
      if (offset + got < size) {
        const why = session.signal.aborted ? "Receiver shutting down" : "Connection closed";
        throw new TransferError(
          `${why} after ${offset + got} of ${size} bytes; ${quoteName(target.part)} kept to resume`,
        );
      }
      const theirs = await this.#readTrailer(session, size, target.part, () => keepPart = false);
      keepPart = false;
      const ours = hash.digest("hex");
      if (theirs !== ours) {
        throw new TransferError(
          `Digest mismatch: the bytes received have sha256 ${ours}, the sender says ${theirs}; discarded`,
        );
      }
      if (this.#options.fsync) await file.syncData();
      closeFile();
      keepPart = true; // the bytes are right; a failure to place them keeps them
      await this.#place(partPath, join(this.dir, target.final), target.final);
      if (this.#options.fsync) await syncDirectory(this.dir);
      await session.writeAll(`ok ${ours} ${target.final}\n`);
      this.#log.info(`${session.peer}: saved ${quoteName(target.final)}, ${size} bytes`);
      const saved = {
        path: join(this.dir, target.final),
        size,
        hex: ours,
        peer: session.peer,
        resumedAt: offset,
      };
      (this.#options.onSaved ?? printSaved)(saved);
    } catch (error) {
      closeFile();
      if (!keepPart) await Deno.remove(partPath).catch(() => {});
      if (!(error instanceof TransferError)) throw error;
      return this.#refuse(session, error.message);
    } finally {
      closeFile();
    }
  }

  /**
   * Opens the `.part` to write: a new one, or an earlier one to resume
   * (its bytes fed to `hash` first). Refuses symlinks and hard links.
   */
  async #openPart(
    path: string,
    part: string,
    size: number,
    hash: ReturnType<typeof sha256>,
    session: Session,
  ): Promise<{ file: Deno.FsFile; offset: number }> {
    let info: Deno.FileInfo | null = null;
    try {
      info = await Deno.lstat(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
    if (info && (!info.isFile || (info.nlink ?? 1) > 1)) {
      throw new TransferError(
        `${
          quoteName(part)
        } exists and is not a plain file (a symlink, directory or hard link); refusing`,
      );
    }
    if (info && info.size > size) {
      // Left by a longer file of the same name: no prefix of this one.
      await Deno.remove(path);
      info = null;
    }
    if (!info) {
      try {
        // createNew (O_EXCL) never follows a symlink planted meanwhile.
        return { file: await Deno.open(path, { write: true, createNew: true }), offset: 0 };
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        throw new TransferError(`${quoteName(part)} appeared while opening it; refusing`);
      }
    }
    const file = await Deno.open(path, { read: true, write: true });
    try {
      const stat = await file.stat();
      if (stat.ino !== info.ino || stat.dev !== info.dev) {
        throw new TransferError(`${quoteName(part)} changed while opening it; refusing`);
      }
      const offset = info.size;
      const hashed = await copyHashed(file, hash, offset, {
        onChunk: () => session.lastActive = Date.now(), // hashing is no idleness of the sender
      });
      if (hashed !== offset) {
        throw new TransferError(`${quoteName(part)} shrank while reading it; refusing`);
      }
      return { file, offset };
    } catch (error) {
      file.close();
      throw error;
    }
  }

  /** Reads the `sha256 <hex>` trailer; `discard` marks the bytes as complete but wrong. */
  async #readTrailer(
    session: Session,
    size: number,
    part: string,
    discard: () => void,
  ): Promise<string> {
    const reader = new LineReader(session, { maxLineBytes: MAX_REPLY_BYTES });
    const line = await readBoundedLine(reader);
    if (line === TOO_LONG) {
      discard();
      throw new TransferError(
        `Expected "sha256 <hex>" after ${size} bytes, got more data (declared size too short?)`,
      );
    }
    if (line === null) {
      throw new TransferError(
        `Connection closed before the sha256 trailer; ${quoteName(part)} kept to resume`,
      );
    }
    discard();
    try {
      const hex = parseTrailer(line);
      if (reader.buffered > 0) throw new ProtocolError("Data after the sha256 trailer");
      return hex;
    } catch (error) {
      if (error instanceof ProtocolError) throw new TransferError(error.message);
      throw error;
    }
  }

  /** Moves a verified `.part` into place: replacing only with --overwrite, never following links. */
  async #place(partPath: string, finalPath: string, final: string): Promise<void> {
    if (this.#options.existing === "overwrite") {
      await Deno.rename(partPath, finalPath); // replaces a symlink itself, not its target
      return;
    }
    try {
      await Deno.link(partPath, finalPath); // fails if the name appeared meanwhile
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      throw new TransferError(`${quoteName(final)} appeared meanwhile; kept the .part`);
    }
    await Deno.remove(partPath);
  }
}

/** Flushes a directory's entries (the rename) to disk, where the system allows it. */
async function syncDirectory(path: string): Promise<void> {
  try {
    using dir = await Deno.open(path, { read: true });
    await dir.sync();
  } catch {
    // Not every system can open a directory; the file itself is flushed.
  }
}

/** What {@link readBoundedLine} returns for a line over the reader's bound. */
const TOO_LONG = Symbol("too long");

/** Reads one line: the line, null at end of stream, or {@link TOO_LONG}. */
async function readBoundedLine(reader: LineReader): Promise<string | null | typeof TOO_LONG> {
  try {
    return await reader.readLine();
  } catch (error) {
    if (error instanceof LineTooLongError) return TOO_LONG;
    throw error;
  }
}

function printSaved(saved: SavedFile): void {
  const resumed = saved.resumedAt > 0 ? `, resumed at ${saved.resumedAt}` : "";
  console.log(
    `Saved ${saved.path} (${formatBytes(saved.size)}, ${saved.size} bytes${resumed}, ` +
      `sha256 ${saved.hex}) from ${saved.peer}`,
  );
}

/** Checks that `dir` is a directory this process may read and write; returns its absolute path. */
export async function checkDirectory(dir: string): Promise<string> {
  const path = resolve(dir);
  for (const name of ["read", "write"] as const) {
    const { state } = await Deno.permissions.query({ name, path });
    if (state !== "granted") {
      throw new Error(
        `No permission to ${name} "${path}": run with --allow-read=${path} --allow-write=${path}`,
      );
    }
  }
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new Error(`No directory "${path}"`);
    throw error;
  }
  if (!info.isDirectory) throw new Error(`"${path}" is not a directory`);
  return path;
}

/** Starts receiving files into `dir` and returns the server's handle. */
export async function serveFiles(dir: string, options: ReceiverOptions = {}): Promise<TcpServer> {
  const path = await checkDirectory(dir);
  const board = new ProgressBoard({
    tty: options.progress,
    log: (line) => log.info(line),
  });
  const log = new Logger({ quiet: options.quiet, sink: board.sink });
  const receiver = new Receiver(path, options, log, board);
  const idleMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  return serveTcp((session) => receiver.handle(session), {
    address: options.address,
    maxConns: options.maxConns ?? DEFAULT_MAX_CONNS,
    limit: options.limit,
    idleTimeoutMs: idleMs,
    idleMessage: errorLine(`Nothing received for ${idleMs} ms; closing`),
    busyMessage: errorLine("Too many senders at once, try again later"),
    signal: options.signal,
    logger: log,
    onListen: options.onListen,
  });
}

/** Parses a size such as `1048576`, `512K`, `10M`, `1.5G` or `2GiB` into bytes. */
export function parseSize(text: string, name: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?$/i.exec(text.trim());
  const exponent = match ? " KMGT".indexOf(match[2].toUpperCase() || " ") : -1;
  const bytes = match ? Math.floor(Number(match[1]) * 1024 ** exponent) : NaN;
  if (!Number.isSafeInteger(bytes)) {
    throw new UsageError(
      `Invalid --${name} "${text}": expected bytes such as 1048576, 512K, 10M or 2G`,
    );
  }
  return bytes;
}

const spec = {
  name: "file_recv",
  summary: "Receives files over TCP into DIR, one file per connection, checked by SHA-256.",
  args: "[ADDR] --dir DIR",
  options: {
    dir: { type: "string", short: "d", arg: "DIR", description: "directory to save files in" },
    "max-size": {
      type: "string",
      arg: "SIZE",
      description: "refuse files larger than SIZE (bytes, or 512K, 10M, 2G) (default none)",
    },
    overwrite: { type: "boolean", description: "replace a file that exists" },
    fsync: {
      type: "boolean",
      description: "flush each file to disk before confirming it (slower, survives a crash)",
    },
    rename: { type: "boolean", description: 'save as "name (1).ext" when name.ext exists' },
    ...serverOptions(["max-conns", "idle-timeout", "quiet"], {
      "max-conns": { default: String(DEFAULT_MAX_CONNS), description: "most senders at once" },
      "idle-timeout": { default: "60s", description: "drop a sender silent this long (0 = never)" },
      quiet: { description: "log only errors" },
    }),
  },
  notes: `ADDR is PORT, HOST:PORT or [IPv6]:PORT (default 1234).
Each file is written to NAME.part and renamed to NAME once its size and
SHA-256 match; a broken transfer leaves NAME.part, and the next send of the
same file resumes from it. Names must be plain file names (no paths, no
control characters, at most 255 bytes).

Examples:
  file_recv 9000 --dir ./inbox
  file_recv 127.0.0.1:9000 --dir /srv/inbox --rename --max-size 2G`,
} as const;

/** Receives files until SIGINT or SIGTERM; returns the exit code. */
export function main(args: string[]): Promise<number> {
  return runCommand(spec, args, ({ values, positionals }) => {
    if (values.dir === undefined) throw new UsageError("Missing --dir DIR");
    if (values.overwrite && values.rename) {
      throw new UsageError("Use either --overwrite or --rename, not both");
    }
    const settings = serverSettings(values, positionals, { defaultPort: 1234 });
    const options: ReceiverOptions = {
      maxSize: values["max-size"] === undefined
        ? undefined
        : parseSize(values["max-size"], "max-size"),
      existing: values.overwrite ? "overwrite" : values.rename ? "rename" : "refuse",
      idleTimeoutMs: settings.idleTimeoutMs,
      quiet: settings.quiet,
      fsync: values.fsync,
    };
    const dir = values.dir;
    return runServer(
      settings,
      (run) => serveFiles(dir, { ...options, ...run }),
      { moduleUrl: import.meta.url },
    );
  });
}

if (import.meta.main) Deno.exit(await main(Deno.args));
