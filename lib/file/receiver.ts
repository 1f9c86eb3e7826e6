/**
 * The receiving side of a file transfer, one connection at a time: the
 * opening (token, resume key, header, or seed 004's bare name), the
 * partial copy, the content, the digests, and moving the file into place.
 *
 * @module
 */
import { join } from "node:path";
import {
  errorLine,
  MAX_REPLY_BYTES,
  MAX_STREAM_CHUNK_BYTES,
  nameProblem,
  type Opening,
  parseOpening,
  parsePrefix,
  parseTrailer,
  ProtocolError,
  quoteName,
  TOKEN_WORD,
} from "./file_protocol.ts";
import { copyHashed, readFull, sha256 } from "./hashed_copy.ts";
import { readOpening } from "./opening.ts";
import { PartialStore } from "./partials.ts";
import { type ExistingPolicy, Inbox, TransferError } from "./inbox.ts";
import { tokenMatches } from "./token.ts";
import { LineReader, LineTooLongError, type Reader } from "../io/lines.ts";
import type { Logger } from "../cli/log.ts";
import type { ProgressBoard } from "../cli/progress.ts";
import type { Session } from "../net/server.ts";

const strictDecoder = new TextDecoder("utf-8", { fatal: true });

export type { ExistingPolicy };

/** A file saved by the receiver. */
export interface SavedFile {
  /** Where it was saved. */
  path: string;
  size: number;
  /** SHA-256, hex: of the bytes received; checked against the sender's unless `verified` is false. */
  hex: string;
  /** The sender, `host:port`. */
  peer: string;
  /** Bytes taken from an earlier partial copy. */
  resumedAt: number;
  /** False for a bare (seed 004) sender, which sends no size and no digest. */
  verified: boolean;
}

/** What a transfer may do, as file_recv's options set it. */
export interface TransferOptions {
  /** Largest file accepted, in bytes. Default none. */
  maxSize?: number;
  /** What to do with a name that exists. Default "refuse". */
  existing?: ExistingPolicy;
  /** Flush each file to disk before saying it is saved. Default false. */
  fsync?: boolean;
  /** Accept seed 004's bare protocol (name, `ok`, content, close) beside netkit's. Default false. */
  plain?: boolean;
  /** A secret every sender must present on a `token` line. Default none. */
  token?: string;
  /** Called for each saved file. */
  onSaved: (saved: SavedFile) => void;
}

/** A transfer whose bytes have all arrived, waiting for {@link Receiver}'s confirmation. */
interface Received {
  /** The hash of every byte written to the partial copy. */
  hash: ReturnType<typeof sha256>;
  /** The sender's digest, from its trailer. */
  theirs: string;
  file: Deno.FsFile;
  partPath: string;
  final: string;
  size: number;
  resumedAt: number;
}

/** Receives files into one directory; one instance owns the set of names in use. */
export class Receiver {
  readonly dir: string;
  #options: TransferOptions;
  #partials: PartialStore;
  #log: Logger;
  #board: ProgressBoard;
  #inbox: Inbox;

  constructor(
    dir: string,
    partials: PartialStore,
    options: TransferOptions,
    io: { log: Logger; board: ProgressBoard },
  ) {
    this.dir = dir;
    this.#partials = partials;
    this.#inbox = new Inbox(dir, options);
    this.#options = options;
    this.#log = io.log;
    this.#board = io.board;
  }

  /** Serves one connection: one file. */
  async handle(session: Session): Promise<void> {
    const raw = await readOpening(session);
    if (raw.kind === "none") {
      this.#log.info(`${session.peer}: closed without sending a header`);
      return;
    }
    if (raw.kind === "too-long") {
      return this.#refuse(session, "Opening lines over their bound, no header");
    }
    if (this.#options.token !== undefined) {
      const line = raw.kind === "lines"
        ? raw.lines.find((l) => l.startsWith(`${TOKEN_WORD} `))
        : undefined;
      const given = line?.slice(TOKEN_WORD.length + 1);
      if (!tokenMatches(given, this.#options.token)) {
        return this.#refuse(
          session,
          given === undefined
            ? "This receiver needs a token: send with file_send --token-file FILE"
            : "Wrong token",
        );
      }
    }
    if (raw.kind === "bare") {
      if (this.#options.plain) return this.#receiveBare(session, raw.bytes, raw.content);
      const shown = quoteName(new TextDecoder().decode(raw.bytes.subarray(0, 40))) +
        (raw.bytes.byteLength > 40 ? "..." : "");
      return this.#refuse(
        session,
        `Expected "FILE <size> <name>", got ${shown} (a bare name, as seed 004's sender sends, ` +
          `is taken only by file_recv --plain)`,
      );
    }
    let opening: Opening;
    try {
      opening = parseOpening(raw.lines, this.#options.maxSize);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      return this.#refuse(session, error.message);
    }
    if (raw.extra > 0) {
      return this.#refuse(session, "Content sent before the answer to the header");
    }
    if (opening.header.streamed) {
      return this.#withTarget(
        session,
        opening.header.name,
        (final) => this.#receiveStream(session, opening.header.name, final),
      );
    }
    await this.#withTarget(session, opening.header.name, async (final) => {
      const { name, size } = opening.header;
      const id = opening.key === undefined
        ? PartialStore.oneOffId()
        : PartialStore.resumableId(name, size, opening.key);
      if (!this.#partials.claim(id)) {
        throw new TransferError(`${quoteName(name)} is being received from another sender`);
      }
      try {
        await this.#partials.prune(size); // room for this one within the bounds
        await this.#receive(session, opening, final, id);
      } finally {
        this.#partials.release(id);
        await this.#partials.prune();
      }
    });
  }

  async #refuse(session: Session, reason: string): Promise<void> {
    this.#log.info(`${session.peer}: ${reason}`);
    await session.closeWith(errorLine(reason));
  }

  /** Claims a final name for `name` (by the existing-file policy) while `run` runs. */
  async #withTarget(
    session: Session,
    name: string,
    run: (final: string) => Promise<void>,
  ): Promise<void> {
    let final: string;
    try {
      final = await this.#inbox.claim(name);
    } catch (error) {
      if (!(error instanceof TransferError)) throw error;
      return this.#refuse(session, error.message);
    }
    try {
      await run(final);
    } catch (error) {
      if (!(error instanceof TransferError)) throw error;
      return this.#refuse(session, error.message);
    } finally {
      this.#inbox.release(final);
    }
  }

  async #receive(session: Session, opening: Opening, final: string, id: string): Promise<void> {
    const { name, size } = opening.header;
    const partPath = this.#partials.path(id);
    let hash = sha256();
    const { file, offset: held } = await this.#openPart(partPath, size, hash, session);
    let offset = held;
    // A transfer broken after some bytes came keeps its partial for a resume
    // (when it has a key); complete but wrong bytes are discarded.
    let keepPart = !id.startsWith("once-");
    let got = 0;
    try {
      await session.writeAll(offset > 0 ? `ok ${offset}\n` : "ok\n");
      if (offset > 0 && !(await this.#prefixMatches(session, hash.copy().digest("hex")))) {
        this.#log.info(`${session.peer}: the partial copy of ${quoteName(name)} differs; restart`);
        await file.truncate(0);
        await file.seek(0, Deno.SeekMode.Start);
        hash = sha256();
        offset = 0;
        await session.writeAll("ok 0\n");
      } else if (offset > 0) {
        await session.writeAll(`ok ${offset}\n`);
      }
      this.#log.info(
        `${session.peer}: receiving ${quoteName(name)}, ${size} bytes` +
          (offset > 0 ? `, resuming at ${offset}` : ""),
      );
      const progress = this.#board.start(name, size, offset);
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
        const kept = keepPart && offset + got > 0
          ? "kept to resume"
          : "nothing kept (no resume key)";
        throw new TransferError(`${why} after ${offset + got} of ${size} bytes; ${kept}`);
      }
      const theirs = await this.#readTrailer(session, size, () => keepPart = false);
      keepPart = false;
      await this.#confirm(session, {
        hash,
        theirs,
        file,
        partPath,
        final,
        size,
        resumedAt: offset,
      });
    } finally {
      closeQuietly(file);
      if (!keepPart || offset + got === 0) await Deno.remove(partPath).catch(() => {});
    }
  }

  /** After `ok <offset>`: whether the sender's `prefix` line matches the partial's digest. */
  async #prefixMatches(session: Session, ours: string): Promise<boolean> {
    const reader = new LineReader(session, { maxLineBytes: MAX_REPLY_BYTES });
    const line = await readBoundedLine(reader);
    if (line === null) throw new TransferError("Connection closed before the prefix line");
    if (line === TOO_LONG || reader.buffered > 0) {
      throw new TransferError("Content sent before the answer to the prefix line");
    }
    try {
      return parsePrefix(line) === ours;
    } catch (error) {
      if (error instanceof ProtocolError) throw new TransferError(error.message);
      throw error;
    }
  }

  /**
   * Opens the partial copy: a new one, or an earlier one to resume (its
   * bytes fed to `hash` first). Refuses symlinks and hard links.
   */
  async #openPart(
    path: string,
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
    if (info && (!info.isFile || (info.nlink ?? 1) > 1 || info.size > size)) {
      await Deno.remove(path); // no partial of ours, or no prefix of this file
      info = null;
    }
    if (!info) {
      try {
        // createNew (O_EXCL) never follows a symlink planted meanwhile.
        return { file: await Deno.open(path, { write: true, createNew: true }), offset: 0 };
      } catch (error) {
        if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
        throw new TransferError("A partial copy appeared while opening it; refusing");
      }
    }
    const file = await Deno.open(path, { read: true, write: true });
    try {
      const stat = await file.stat();
      if (stat.ino !== info.ino || stat.dev !== info.dev) {
        throw new TransferError("The partial copy changed while opening it; refusing");
      }
      const offset = info.size;
      const hashed = await copyHashed(file, hash, offset, {
        onChunk: () => session.lastActive = Date.now(), // hashing is no idleness of the sender
      });
      if (hashed !== offset) throw new TransferError("The partial copy shrank while reading it");
      return { file, offset };
    } catch (error) {
      file.close();
      throw error;
    }
  }

  /**
   * Ends a verified transfer: the digests must agree, then the copy is
   * flushed (with --fsync), moved into place, confirmed to the sender and
   * reported.
   */
  async #confirm(session: Session, done: Received): Promise<void> {
    const ours = done.hash.digest("hex");
    if (done.theirs !== ours) {
      throw new TransferError(
        `Digest mismatch: the bytes received have sha256 ${ours}, the sender says ${done.theirs}; discarded`,
      );
    }
    if (this.#options.fsync) await done.file.syncData();
    done.file.close();
    await this.#inbox.place(done.partPath, done.final);
    await session.writeAll(`ok ${ours} ${done.final}\n`);
    this.#log.info(`${session.peer}: saved ${quoteName(done.final)}, ${done.size} bytes`);
    this.#options.onSaved({
      path: join(this.dir, done.final),
      size: done.size,
      hex: ours,
      peer: session.peer,
      resumedAt: done.resumedAt,
      verified: true,
    });
  }

  /** Ends a one-off transfer (bare or streamed): its partial never outlives the connection. */
  async #dropOneOff(file: Deno.FsFile, partPath: string, id: string): Promise<void> {
    closeQuietly(file);
    await Deno.remove(partPath).catch(() => {});
    this.#partials.release(id);
  }

  /** Reads the `sha256 <hex>` trailer; `discard` marks the bytes as complete but wrong. */
  async #readTrailer(session: Session, size: number, discard: () => void): Promise<string> {
    const reader = new LineReader(session, { maxLineBytes: MAX_REPLY_BYTES });
    const line = await readBoundedLine(reader);
    if (line === TOO_LONG) {
      discard();
      throw new TransferError(
        `Expected "sha256 <hex>" after ${size} bytes, got more data (declared size too short?)`,
      );
    }
    if (line === null) throw new TransferError("Connection closed before the sha256 trailer");
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

  /**
   * Seed 004's bare protocol: `bytes` is the name; answer `ok` (no
   * newline, as the seed compares the whole reply), then take content
   * until a clean end of stream. Nothing checks it: logged as unverified.
   */
  async #receiveBare(session: Session, bytes: Uint8Array, content: Reader): Promise<void> {
    let name: string;
    try {
      name = strictDecoder.decode(bytes);
    } catch {
      return this.#refuse(session, "Refused name: the name is not valid UTF-8");
    }
    const problem = nameProblem(name);
    if (problem) return this.#refuse(session, `Refused name ${quoteName(name)}: ${problem}`);
    await this.#withTarget(session, name, async (final) => {
      const id = PartialStore.oneOffId();
      this.#partials.claim(id);
      const partPath = this.#partials.path(id);
      const file = await Deno.open(partPath, { write: true, createNew: true });
      try {
        await session.writeAll("ok");
        this.#log.info(`${session.peer}: receiving ${quoteName(name)} (bare protocol)`);
        const hash = sha256();
        const limit = this.#options.maxSize ?? Number.MAX_SAFE_INTEGER;
        const progress = this.#board.start(name, 0, 0);
        let got: number;
        try {
          got = await copyHashed(content, hash, limit, {
            sink: file,
            onChunk: (n) => progress.advance(n),
          });
        } finally {
          progress.finish();
        }
        if (got === limit && (await content.read(new Uint8Array(1))) !== null) {
          throw new TransferError(`${quoteName(name)} is over the limit of ${limit} bytes`);
        }
        if (session.signal.aborted) throw new TransferError("Receiver shutting down");
        if (this.#options.fsync) await file.syncData();
        file.close();
        await this.#inbox.place(partPath, final);
        const hex = hash.digest("hex");
        this.#log.info(
          `${session.peer}: saved ${quoteName(final)}, ${got} bytes, unverified ` +
            `(bare protocol: no size, no digest)`,
        );
        const path = join(this.dir, final);
        this.#options.onSaved({
          path,
          size: got,
          hex,
          peer: session.peer,
          resumedAt: 0,
          verified: false,
        });
      } finally {
        await this.#dropOneOff(file, partPath, id);
      }
    });
  }

  /**
   * A stream of unknown size: chunks (4-byte length, bytes) up to one of
   * length 0, then the trailer; kept only when complete and verified.
   */
  async #receiveStream(session: Session, name: string, final: string): Promise<void> {
    const id = PartialStore.oneOffId();
    this.#partials.claim(id);
    const partPath = this.#partials.path(id);
    const file = await Deno.open(partPath, { write: true, createNew: true });
    const limit = this.#options.maxSize ?? Number.MAX_SAFE_INTEGER;
    const hash = sha256();
    const lengthBytes = new Uint8Array(4);
    let total = 0;
    try {
      await session.writeAll("ok\n");
      this.#log.info(`${session.peer}: receiving ${quoteName(name)}, a stream of unknown size`);
      const progress = this.#board.start(name, 0, 0);
      try {
        while (true) {
          if (await readFull(session, lengthBytes, 4) < 4) {
            throw new TransferError(
              `Connection closed after ${total} bytes of a stream; discarded`,
            );
          }
          const length = new DataView(lengthBytes.buffer).getUint32(0);
          if (length === 0) break;
          if (length > MAX_STREAM_CHUNK_BYTES) {
            throw new TransferError(`A chunk of ${length} bytes, over ${MAX_STREAM_CHUNK_BYTES}`);
          }
          if (total + length > limit) {
            throw new TransferError(`${quoteName(name)} is over the limit of ${limit} bytes`);
          }
          if (
            await copyHashed(session, hash, length, { sink: file, chunkBytes: length }) < length
          ) {
            throw new TransferError(
              `Connection closed after ${total} bytes of a stream; discarded`,
            );
          }
          total += length;
          progress.advance(length);
        }
      } finally {
        progress.finish();
      }
      const theirs = await this.#readTrailer(session, total, () => {});
      await this.#confirm(session, {
        hash,
        theirs,
        file,
        partPath,
        final,
        size: total,
        resumedAt: 0,
      });
    } finally {
      await this.#dropOneOff(file, partPath, id);
    }
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

/** Closes a partial's file unless it was closed already (before its move into place). */
function closeQuietly(file: Deno.FsFile): void {
  try {
    file.close();
  } catch {
    // Closed before the move.
  }
}
