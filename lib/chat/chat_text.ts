/**
 * The text rules of the chat room, shared by the hub, its transports and
 * the terminal client: which names are valid, how a message is cleaned up
 * before it is broadcast, how control characters are made visible on a
 * terminal, and the seed's `2006-01-02 15:04:05` timestamps.
 *
 * @module
 */

/** Longest name, in characters (code points). */
export const MAX_NAME_CHARS = 32;
/** Longest message, in UTF-8 bytes after clean-up (gorilla's chat uses 512). */
export const DEFAULT_MAX_MESSAGE_BYTES = 512;

import { escapeControls } from "../io/escape.ts";
import { nameCharsProblem, normalizeName } from "../text/names.ts";

/** The room shows what members send escaped by the one terminal-safety function. */
export { escapeControls };

const NEWLINES = /\r\n|[\r\n\u2028\u2029]/g;
const encoder = new TextEncoder();

/** A name the room refuses: empty, too long, with spaces or control characters. */
export class NameError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = "NameError";
  }
}

/** A message the room refuses: empty, or too long. */
export class MessageError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = "MessageError";
  }
}

/**
 * Checks a requested name and returns it normalised (NFKC) and trimmed;
 * throws {@link NameError} quoting (escaped) the bad value. Names are 1-32
 * characters with no whitespace and no invisible, format or control
 * character (lib/text/names.ts); anything else, `<b>` included, is fine
 * because every transport shows names as text. The hub treats a name that
 * looks like a present one (its TR39 skeleton) as taken.
 */
export function checkName(requested: string): string {
  const name = normalizeName(requested);
  if (name === "") throw new NameError("Invalid name: it is empty");
  const quoted = `"${escapeControls(name)}"`;
  if ([...name].length > MAX_NAME_CHARS) {
    throw new NameError(`Invalid name ${quoted}: longer than ${MAX_NAME_CHARS} characters`);
  }
  const problem = nameCharsProblem(name);
  if (problem) throw new NameError(`Invalid name ${quoted}: ${problem}`);
  if (/\s/u.test(name)) throw new NameError(`Invalid name ${quoted}: spaces are not allowed`);
  return name;
}

/**
 * Cleans up a message as the room stores it: newlines become spaces and
 * the ends are trimmed. Throws {@link MessageError} when nothing is left or
 * the result is longer than `maxBytes` UTF-8 bytes.
 */
export function cleanMessage(text: string, maxBytes = DEFAULT_MAX_MESSAGE_BYTES): string {
  const clean = text.replace(NEWLINES, " ").trim();
  if (clean === "") throw new MessageError("Empty message: nothing to send");
  // Most messages are short: count bytes only when the characters could exceed the bound.
  if (clean.length * 3 > maxBytes) {
    const bytes = encoder.encode(clean).byteLength;
    if (bytes > maxBytes) {
      throw new MessageError(`Message too long: ${bytes} bytes, the limit is ${maxBytes}`);
    }
  }
  return clean;
}

/** Formats a time as seed 001 does, `2006-01-02 15:04:05`, in local time. */
export function chatTime(date: Date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())} ` +
    `${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}`;
}
