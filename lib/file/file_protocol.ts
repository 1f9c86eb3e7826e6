/**
 * The file transfer protocol `file_send` and `file_recv` speak: one file
 * per TCP connection, lines in UTF-8 ending in `\n`, raw bytes between.
 *
 *     sender   FILE <size> <name>              the header
 *     receiver ok | ok <offset> | error <reason>
 *     sender   <size - offset bytes of content>
 *     sender   sha256 <64 hex digits>          the trailer: digest of the whole file
 *     receiver ok <64 hex digits> <saved name> | error <reason>
 *
 * `ok <offset>` resumes: the receiver holds the first `offset` bytes in a
 * `.part` file, the sender sends the rest, and both digests still cover
 * the whole file. The sender half-closes after the trailer, so a size
 * declared too long ends in a clean end-of-stream error instead of a hang.
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
/** Suffix of the file a transfer writes before it is complete. */
export const PART_SUFFIX = ".part";
const encoder = new TextEncoder();

/** A header: what the sender offers. */
export interface FileHeader {
  name: string;
  size: number;
}

/** Raised for a protocol line that does not parse, or a name that is not allowed. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/**
 * Why `name` is not a plain file name, or null when it is one: no
 * directories (`/`, `\`), no `.` or `..`, no drive letters, no NUL or
 * control characters, not empty, at most 255 bytes of UTF-8.
 */
export function nameProblem(name: string): string | null {
  if (name === "") return "the name is empty";
  const bytes = encoder.encode(name).byteLength;
  if (bytes > MAX_NAME_BYTES) return `the name is ${bytes} bytes, over ${MAX_NAME_BYTES}`;
  if (name === "." || name === "..") return `"${name}" is a directory`;
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f-\x9f]/.test(name)) return "the name contains control characters";
  if (/[/\\]/.test(name)) return "the name contains a path separator";
  if (/^[A-Za-z]:/.test(name)) return "the name starts with a drive letter";
  if (name.includes("\ufffd")) return "the name is not valid UTF-8";
  return null;
}

/** Quotes a name for messages, escaping control characters so a log cannot be forged. */
export function quoteName(name: string): string {
  return quoteText(name, MAX_HEADER_BYTES);
}

/** Formats the header line (newline included). */
export function formatHeader(header: FileHeader): Uint8Array {
  return encoder.encode(`${HEADER_WORD} ${header.size} ${header.name}\n`);
}

/** Parses a header line; throws {@link ProtocolError} on a bad line or a bad name. */
export function parseHeader(line: string, maxSize = Number.MAX_SAFE_INTEGER): FileHeader {
  const match = /^FILE (\d{1,20})(?: (.*))?$/s.exec(line);
  if (!match) {
    const shown = quoteName(line.slice(0, 40)) + (line.length > 40 ? "..." : "");
    throw new ProtocolError(`Expected "FILE <size> <name>", got ${shown}`);
  }
  const size = Number(match[1]);
  if (!Number.isSafeInteger(size)) throw new ProtocolError(`Size ${match[1]} is too large`);
  const name = match[2] ?? "";
  const problem = nameProblem(name);
  if (problem) throw new ProtocolError(`Refused name ${quoteName(name)}: ${problem}`);
  if (size > maxSize) {
    throw new ProtocolError(`${quoteName(name)} is ${size} bytes, over the limit of ${maxSize}`);
  }
  return { name, size };
}

/** The receiver's first answer: where to start, or why not. */
export type Answer = { ok: true; offset: number } | { ok: false; reason: string };

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

/** `name (1).ext`, `name (2).ext`, ...: the n-th alternative for a name that exists. */
export function numberedName(name: string, n: number): string {
  const dot = name.lastIndexOf(".");
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
  return `${stem} (${n})${ext}`;
}
