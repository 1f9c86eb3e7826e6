/**
 * Terminal safety, in one place: what a peer sent is shown with control
 * characters and bidi marks made visible (`\x1b`, `\u202e`), so it can
 * neither drive a terminal nor forge or disguise a line, and logged
 * payloads are cut to a bound with the count of bytes left out.
 *
 * @module
 */

/** How many bytes of a peer's payload a log line shows. */
export const LOG_PAYLOAD_BYTES = 200;

/**
 * C0 and C1 controls (ESC, CR, LF, CSI U+009B...), DEL, every bidi
 * control (U+061C, U+200E/F, U+202A-E, U+2066-9) and the line and
 * paragraph separators: the characters that move a cursor, run a terminal
 * command, start a new line or reorder the text shown around them.
 */
const UNSAFE = /[\p{Cc}\p{Bidi_Control}\u2028\u2029]/u;
const UNSAFE_ALL = new RegExp(UNSAFE.source, "gu");
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Makes the unsafe characters visible: ESC becomes `\x1b`, a newline
 * `\x0a`, U+202E `\u202e`. Everything else, backslashes included, stays.
 */
export function escapeControls(text: string): string {
  if (!UNSAFE.test(text)) return text;
  return text.replace(UNSAFE_ALL, (c) => {
    const code = c.codePointAt(0)!;
    return code < 0x100
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/**
 * Masks the unsafe characters with `?`, keeping newlines and tabs: for
 * multi-line text a program lays out itself on a terminal (im_client's
 * messages), where the `\x1b` spelling of {@link escapeControls} would
 * only be noise.
 */
export function maskControls(text: string): string {
  if (!UNSAFE.test(text)) return text;
  return text.replace(UNSAFE_ALL, (c) => c === "\n" || c === "\t" ? c : "?");
}

/** Quotes a value for a message: `"..."` around the escaped text, cut after `maxChars`. */
export function quoteText(text: string, maxChars = LOG_PAYLOAD_BYTES): string {
  const chars = [...text.slice(0, maxChars * 2)];
  const cut = chars.length > maxChars || text.length > maxChars * 2;
  const shown = cut ? chars.slice(0, maxChars).join("") : text;
  const quoted = `"${escapeControls(shown).replaceAll('"', '\\"')}"`;
  return cut ? `${quoted}...` : quoted;
}

/**
 * A peer's payload as a log line shows it: decoded as UTF-8, escaped, and
 * cut after `maxBytes` bytes (never inside a character) with
 * `... (N more bytes)` saying how much was left out.
 */
export function logPayload(data: string | Uint8Array, maxBytes = LOG_PAYLOAD_BYTES): string {
  if (typeof data === "string") {
    // A character is at most 3 UTF-16-to-UTF-8 bytes per code unit: short text needs no count.
    if (data.length * 3 <= maxBytes) return escapeControls(data);
    data = encoder.encode(data);
  }
  if (data.byteLength <= maxBytes) return escapeControls(decoder.decode(data));
  let cut = maxBytes;
  while (cut > 0 && (data[cut] & 0xc0) === 0x80) cut--; // back to a character's first byte
  const shown = escapeControls(decoder.decode(data.subarray(0, cut)));
  return `${shown}... (${data.byteLength - cut} more bytes)`;
}

/** Something that can say whether it is a terminal, such as `Deno.stdout`. */
export interface MaybeTerminal {
  isTerminal(): boolean;
}

/**
 * Text for stdout: escaped when `out` is a terminal, as it is when piped
 * to a file or a program (where the bytes are data, kept exact).
 */
export function forTerminal(text: string, out: MaybeTerminal = Deno.stdout): string {
  return out.isTerminal() ? escapeControls(text) : text;
}
