/**
 * The file transfer protocol `file_send` and `file_recv` speak: one file
 * per TCP connection, lines in UTF-8 ending in `\n`, raw bytes between.
 *
 *     sender   token <secret>                  only to a receiver started with --token-file
 *     sender   key <64 hex digits>             the resume key (see below); optional
 *     sender   FILE <size> <name>              the header; the lines above come in one write
 *                                              (`FILE - <name>`: size unknown, content in chunks)
 *     receiver ok | ok <offset> | error <reason>
 *     sender   prefix <64 hex digits>          after `ok <offset>` only: SHA-256 of those bytes
 *     receiver ok | error <reason>             after `prefix` only
 *     sender   <size - offset bytes of content>
 *     sender   sha256 <64 hex digits>          the trailer: digest of the whole file
 *     receiver ok <64 hex digits> <saved name> | error <reason>
 *
 * `ok <offset>` resumes: the receiver holds the first `offset` bytes of an
 * earlier transfer with the same name, size and key, the sender proves
 * with `prefix` that its first `offset` bytes are those, then sends the
 * rest, and both digests still cover the whole file. The key is the
 * SHA-256 of the file's first MiB (all of a smaller file), so only a
 * sender that holds the file learns that a partial copy exists and how
 * long it is. The sender half-closes after the trailer, so a size
 * declared too long ends in a clean end-of-stream error instead of a hang.
 *
 * A stream of unknown size (`file_send -`) sends `FILE - <name>`, and
 * after `ok` its content in chunks, each a 4-byte big-endian length and
 * that many bytes (at most 1 MiB), ended by a chunk of length 0, then the
 * trailer as above; it cannot resume.
 *
 * Seed 004's bare protocol (`--plain`): the sender writes the name alone,
 * without a newline, waits for `ok` (without one either), sends the
 * content and closes; no size, no digest.
 *
 * @module
 */
import { quoteText } from "../io/escape.ts";

/** The word that starts a header line. */
export const HEADER_WORD = "FILE";
/** The word that starts the trailer line. */
export const TRAILER_WORD = "sha256";
/** Longest file name in bytes, the limit of ext4, XFS, btrfs and NTFS. */
export const MAX_NAME_BYTES = 255;
/** Bound on the header line: the word, a size of up to 20 digits, the name, spaces. */
export const MAX_HEADER_BYTES = HEADER_WORD.length + 1 + 20 + 1 + MAX_NAME_BYTES;
/** Bound on every other protocol line (answers, trailer, errors). */
export const MAX_REPLY_BYTES = 1024;
/** The word of the line that carries the receiver's token. */
export const TOKEN_WORD = "token";
/** The word of the line that carries the resume key. */
export const KEY_WORD = "key";
/** The word of the line that proves the sender's first bytes equal the receiver's partial copy. */
export const PREFIX_WORD = "prefix";
/** How much of the file's start the resume key covers. */
export const RESUME_KEY_BYTES = 1024 * 1024;
/** Longest token, in bytes. */
export const MAX_TOKEN_BYTES = 512;
/** Bound on the sender's opening lines (token, key and header). */
export const MAX_OPENING_BYTES = MAX_TOKEN_BYTES + MAX_HEADER_BYTES + 128;
const encoder = new TextEncoder();

/** Largest chunk of a stream of unknown size. */
export const MAX_STREAM_CHUNK_BYTES = 1024 * 1024;

/** A header: what the sender offers. */
export interface FileHeader {
  name: string;
  /** Bytes; 0 for a stream. */
  size: number;
  /** Size unknown: the content comes in chunks (`FILE - <name>`). */
  streamed?: boolean;
}

/** Raised for a protocol line that does not parse, or a name that is not allowed. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/**
 * Why `name` is not a safe relative file name, or null when it is one:
 * one or more plain names joined by `/` (a file sent from a folder), none
 * of them empty, `.` or `..`; no `\`, no drive letters, no NUL or control
 * characters, not empty, at most 255 bytes of UTF-8 in all.
 */
export function nameProblem(name: string): string | null {
  if (name === "") return "the name is empty";
  const bytes = encoder.encode(name).byteLength;
  if (bytes > MAX_NAME_BYTES) return `the name is ${bytes} bytes, over ${MAX_NAME_BYTES}`;
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f-\x9f]/.test(name)) return "the name contains control characters";
  if (name.includes("\\")) return "the name contains a backslash (a path separator)";
  if (/^[A-Za-z]:/.test(name)) return "the name starts with a drive letter";
  if (name.includes("\ufffd")) return "the name is not valid UTF-8";
  if (name.startsWith("/")) return "the name is an absolute path (a path separator first)";
  for (const part of name.split("/")) {
    if (part === "") {
      return "the name has an empty folder name (a path separator at the end or twice)";
    }
    if (part === "." || part === "..") return `"${part}" is a directory, not a file or folder name`;
  }
  return null;
}

/** Quotes a name for messages, escaping control characters so a log cannot be forged. */
export function quoteName(name: string): string {
  return quoteText(name, MAX_HEADER_BYTES);
}

/** Formats the header line (newline included). */
export function formatHeader(header: FileHeader): Uint8Array {
  const size = header.streamed ? "-" : header.size;
  return encoder.encode(`${HEADER_WORD} ${size} ${header.name}\n`);
}

/** Parses a header line; throws {@link ProtocolError} on a bad line or a bad name. */
export function parseHeader(line: string, maxSize = Number.MAX_SAFE_INTEGER): FileHeader {
  const match = /^FILE (\d{1,20}|-)(?: (.*))?$/s.exec(line);
  if (!match) {
    const shown = quoteName(line.slice(0, 40)) + (line.length > 40 ? "..." : "");
    throw new ProtocolError(`Expected "FILE <size> <name>", got ${shown}`);
  }
  const streamed = match[1] === "-";
  const size = streamed ? 0 : Number(match[1]);
  if (!Number.isSafeInteger(size)) throw new ProtocolError(`Size ${match[1]} is too large`);
  const name = match[2] ?? "";
  const problem = nameProblem(name);
  if (problem) throw new ProtocolError(`Refused name ${quoteName(name)}: ${problem}`);
  if (size > maxSize) {
    throw new ProtocolError(`${quoteName(name)} is ${size} bytes, over the limit of ${maxSize}`);
  }
  return streamed ? { name, size, streamed } : { name, size };
}

/** The receiver's first answer: where to start, or why not. */
export type Answer = { ok: true; offset: number } | { ok: false; reason: string };

/** What the sender said before any content: its opening lines, parsed, and what followed them. */
export interface Opening {
  header: FileHeader;
  /** The `token` line's secret, if one came. */
  token?: string;
  /** The `key` line's hex, if one came. */
  key?: string;
}

/**
 * Parses the opening lines (newlines removed); the last must be the
 * header, and `token` and `key` may come before it, once each.
 */
export function parseOpening(lines: string[], maxSize = Number.MAX_SAFE_INTEGER): Opening {
  const last = lines.at(-1) ?? "";
  if (encoder.encode(last).byteLength > MAX_HEADER_BYTES) {
    throw new ProtocolError(`Header line over ${MAX_HEADER_BYTES} bytes`);
  }
  const header = parseHeader(last, maxSize);
  const opening: Opening = { header };
  for (const line of lines.slice(0, -1)) {
    const space = line.indexOf(" ");
    const [word, value] = [line.slice(0, space), line.slice(space + 1)];
    if (word === TOKEN_WORD && opening.token === undefined) opening.token = value;
    else if (word === KEY_WORD && opening.key === undefined && /^[0-9a-f]{64}$/.test(value)) {
      opening.key = value;
    } else {
      throw new ProtocolError(`Unexpected line before the header: ${quoteName(line.slice(0, 40))}`);
    }
  }
  return opening;
}

/** Formats the sender's opening lines (newlines included), to go out in one write. */
export function formatOpening(opening: Opening): Uint8Array {
  const token = opening.token === undefined ? "" : `${TOKEN_WORD} ${opening.token}\n`;
  const key = opening.key === undefined ? "" : `${KEY_WORD} ${opening.key}\n`;
  const header = formatHeader(opening.header);
  const lines = encoder.encode(`${token}${key}`);
  const out = new Uint8Array(lines.byteLength + header.byteLength);
  out.set(lines);
  out.set(header, lines.byteLength);
  return out;
}

/** Parses the receiver's first answer. */
export function parseAnswer(line: string, size: number): Answer {
  if (line.startsWith("error ")) return { ok: false, reason: line.slice("error ".length) };
  if (line === "ok") return { ok: true, offset: 0 };
  const match = /^ok (\d{1,20})$/.exec(line);
  if (!match || Number(match[1]) > size) {
    throw new ProtocolError(`Unexpected answer ${quoteName(line.slice(0, 80))}`);
  }
  return { ok: true, offset: Number(match[1]) };
}

/** Formats the `prefix` line (newline included): the digest of the bytes the receiver holds. */
export function formatPrefix(hex: string): Uint8Array {
  return encoder.encode(`${PREFIX_WORD} ${hex}\n`);
}

/** Parses the `prefix` line into its hex digest. */
export function parsePrefix(line: string): string {
  const match = /^prefix ([0-9a-f]{64})$/.exec(line);
  if (!match) {
    throw new ProtocolError(`Expected "prefix <hex>", got ${quoteName(line.slice(0, 40))}`);
  }
  return match[1];
}

/** Formats the trailer line (newline included). */
export function formatTrailer(hex: string): Uint8Array {
  return encoder.encode(`${TRAILER_WORD} ${hex}\n`);
}

/** Parses the trailer line into the sender's hex digest. */
export function parseTrailer(line: string): string {
  const match = /^sha256 ([0-9a-f]{64})$/.exec(line);
  if (!match) {
    throw new ProtocolError(
      `Expected "sha256 <hex>" after the content, got ${
        quoteName(line.slice(0, 40))
      } (declared size too short?)`,
    );
  }
  return match[1];
}

/** The receiver's final answer: its own digest and the name it saved, or why not. */
export type Verdict = { ok: true; hex: string; saved: string } | { ok: false; reason: string };

/** Parses the receiver's final answer. */
export function parseVerdict(line: string): Verdict {
  if (line.startsWith("error ")) return { ok: false, reason: line.slice("error ".length) };
  const match = /^ok ([0-9a-f]{64}) (.+)$/s.exec(line);
  if (!match) throw new ProtocolError(`Unexpected final answer ${quoteName(line.slice(0, 80))}`);
  return { ok: true, hex: match[1], saved: match[2] };
}

/** Formats an `error` line, flattening the reason to one line. */
export function errorLine(reason: string): string {
  // deno-lint-ignore no-control-regex
  return `error ${reason.replace(/[\x00-\x1f]+/g, " ")}\n`;
}

/** `name (1).ext`, `name (2).ext`, ...: the n-th alternative for a name that exists (its last part). */
export function numberedName(name: string, n: number): string {
  const slash = name.lastIndexOf("/");
  const [folder, base] = [name.slice(0, slash + 1), name.slice(slash + 1)];
  const dot = base.lastIndexOf(".");
  const [stem, ext] = dot > 0 ? [base.slice(0, dot), base.slice(dot)] : [base, ""];
  return `${folder}${stem} (${n})${ext}`;
}
