/**
 * Bounded framing of a stream of JSON values: bytes in, the text of each
 * complete top-level value out, the way Go's `json.Decoder` reads a
 * connection. Values may be back to back, separated by whitespace or
 * newlines, split across reads at any byte, or many in one read.
 *
 * An incremental syntax check finds where each value ends, so a broken
 * value is reported where it breaks instead of swallowing what follows:
 * the reader reports a {@link JsonSyntaxError} and resumes at the next
 * line (a broken value ends at the line where it broke, or, if it spans
 * lines, at the line where the error shows). A value longer than
 * `maxValueBytes` raises {@link JsonTooLargeError}; nothing is buffered
 * without bound.
 *
 * @module
 */
import { type Reader, toReader } from "../io/lines.ts";
import { INITIAL_BUFFER_BYTES, readMore } from "../io/read_buffer.ts";

/** Default bound on one JSON value, in bytes. */
export const DEFAULT_MAX_VALUE_BYTES = 256 * 1024;
/** Default bound on nesting; deeper values are syntax errors, not stack overflows. */
export const DEFAULT_MAX_DEPTH = 64;

/** A value that is not JSON; the reader skips it and goes on. */
export class JsonSyntaxError extends SyntaxError {
  constructor(message: string) {
    super(message);
    this.name = "JsonSyntaxError";
  }
}

/** Raised when one value exceeds its bound; the stream is no longer usable. */
export class JsonTooLargeError extends RangeError {
  /** The bound that was exceeded, in bytes. */
  readonly maxValueBytes: number;
  constructor(maxValueBytes: number) {
    super(`JSON value exceeds the limit of ${maxValueBytes} bytes`);
    this.name = "JsonTooLargeError";
    this.maxValueBytes = maxValueBytes;
  }
}

/** Options for {@link JsonValueReader}. */
export interface JsonValueReaderOptions {
  /** Longest accepted value in bytes. Default 262144. */
  maxValueBytes?: number;
  /** Deepest accepted nesting of arrays and objects. Default 64. */
  maxDepth?: number;
}

/** What {@link JsonValueReader.readValues} returns: value texts, and errors in their place. */
export type JsonItem = string | JsonSyntaxError;

// Scanner states.
const S_TOP = 0; // between top-level values
const S_VALUE = 1; // a value must come (after ':' or ',' in an array)
const S_ARRAY_FIRST = 2; // after '[': a value or ']'
const S_OBJECT_FIRST = 3; // after '{': a key or '}'
const S_KEY = 4; // after ',' in an object: a key
const S_COLON = 5; // after a key
const S_AFTER = 6; // after a value in a container: ',' or the close
const S_STRING = 7;
const S_ESCAPE = 8;
const S_UNICODE = 9; // `#hex` digits still to come
const S_LITERAL = 10; // inside true, false or null
const S_MINUS = 11; // after '-': a digit must come
const S_ZERO = 12; // after a leading 0
const S_INT = 13;
const S_DOT = 14; // after '.': a digit must come
const S_FRAC = 15;
const S_EXP = 16; // after 'e': a sign or digit
const S_EXP_SIGN = 17; // after the exponent's sign: a digit
const S_EXP_DIGITS = 18;
const S_SKIP_LINE = 19; // after an error: discarding to the end of the line

const LF = 0x0a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OBJECT = 0x7b; // '{' on the nesting stack
const ARRAY = 0x5b; // '[' on the nesting stack
const LITERALS: Record<number, Uint8Array> = {
  0x74: new TextEncoder().encode("true"),
  0x66: new TextEncoder().encode("false"),
  0x6e: new TextEncoder().encode("null"),
};

function isSpace(c: number): boolean {
  return c === 0x20 || c === LF || c === 0x0d || c === 0x09;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/** Describes a byte for an error message: `'x'`, `'\n'` or `byte 0x01`. */
function describe(c: number): string {
  if (c === LF) return "a newline";
  if (c >= 0x20 && c < 0x7f) return `'${String.fromCharCode(c)}'`;
  return `byte 0x${c.toString(16).padStart(2, "0")}`;
}

/**
 * Splits a byte source into the texts of complete JSON values, a batch at
 * a time. `readValues()` returns every value one read made available (and
 * a {@link JsonSyntaxError} in place of each broken one), so a server can
 * answer them all with one write. The buffer starts small and grows only
 * while a value needs it.
 */
export class JsonValueReader {
  readonly maxValueBytes: number;
  readonly maxDepth: number;
  #source: Reader;
  #decoder = new TextDecoder();
  #buf: Uint8Array;
  #start = 0; // first byte of the value being scanned (or of what is unscanned)
  #pos = 0; // next byte to scan
  #end = 0; // end of the bytes read so far
  #eof = false;
  #state = S_TOP;
  #stack: Uint8Array;
  #depth = 0;
  #keyString = false; // the string being scanned is an object key
  #literal: Uint8Array = LITERALS[0x74];
  #literalIndex = 0;
  #hexLeft = 0;
  #resumeAt = 0; // where the scan goes on after a syntax error

  constructor(source: Reader | ReadableStream<Uint8Array>, options: JsonValueReaderOptions = {}) {
    this.#source = toReader(source);
    this.maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    this.maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.#stack = new Uint8Array(this.maxDepth);
    this.#buf = new Uint8Array(INITIAL_BUFFER_BYTES);
  }

  /** Bytes received but not yet returned as part of a value. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /**
   * Returns the next batch of complete values (as text) and syntax errors,
   * or null at the end of the stream. A value cut off by the end of the
   * stream is returned as a syntax error. Throws {@link JsonTooLargeError}.
   */
  async readValues(): Promise<JsonItem[] | null> {
    while (true) {
      const items: JsonItem[] = [];
      this.#scan(items);
      if (items.length > 0) return items;
      if (this.#eof) return this.#finish();
      await this.#fill();
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<JsonItem> {
    while (true) {
      const batch = await this.readValues();
      if (batch === null) return;
      yield* batch;
    }
  }

  /** At end of stream: a number still open is complete; anything else open is cut off. */
  #finish(): JsonItem[] | null {
    const state = this.#state;
    if (state === S_TOP || state === S_SKIP_LINE) {
      this.#start = this.#pos = this.#end;
      this.#state = S_TOP;
      return null;
    }
    const items: JsonItem[] = [];
    if (
      this.#depth === 0 &&
      (state === S_ZERO || state === S_INT || state === S_FRAC || state === S_EXP_DIGITS)
    ) {
      items.push(this.#decode(this.#start, this.#end));
    } else {
      items.push(new JsonSyntaxError("Unexpected end of input inside a JSON value"));
    }
    this.#start = this.#pos = this.#end;
    this.#state = S_TOP;
    this.#depth = 0;
    return items;
  }

  /** Scans the unscanned bytes, pushing each value or error that ends among them. */
  #scan(items: JsonItem[]): void {
    const buf = this.#buf;
    const end = this.#end;
    let i = this.#pos;
    let state = this.#state;
    while (i < end) {
      const c = buf[i];
      switch (state) {
        case S_TOP:
          if (isSpace(c)) {
            i++;
            this.#start = i;
            continue;
          }
          this.#start = i;
          state = S_VALUE;
          continue; // rescan c as the value's first byte
        case S_VALUE:
        case S_ARRAY_FIRST:
          if (isSpace(c)) break;
          if (c === 0x5d && state === S_ARRAY_FIRST) { // ']'
            i++;
            state = this.#close(items, i);
            continue;
          }
          if (c === QUOTE) {
            this.#keyString = false;
            state = S_STRING;
          } else if (c === OBJECT || c === ARRAY) {
            if (this.#depth === this.maxDepth) {
              state = this.#fail(`JSON nesting deeper than ${this.maxDepth} levels`, items, i);
              i = this.#resumeAt;
              continue;
            }
            this.#stack[this.#depth++] = c;
            state = c === OBJECT ? S_OBJECT_FIRST : S_ARRAY_FIRST;
          } else if (c === 0x2d) { // '-'
            state = S_MINUS;
          } else if (c === 0x30) {
            state = S_ZERO;
          } else if (isDigit(c)) {
            state = S_INT;
          } else if (LITERALS[c]) {
            this.#literal = LITERALS[c];
            this.#literalIndex = 1;
            state = S_LITERAL;
          } else {
            state = this.#fail(`Unexpected ${describe(c)} where a JSON value should be`, items, i);
            i = this.#resumeAt;
            continue;
          }
          break;
        case S_OBJECT_FIRST:
        case S_KEY:
          if (isSpace(c)) break;
          if (c === QUOTE) {
            this.#keyString = true;
            state = S_STRING;
          } else if (c === 0x7d && state === S_OBJECT_FIRST) { // '}'
            i++;
            state = this.#close(items, i);
            continue;
          } else {
            state = this.#fail(`Unexpected ${describe(c)} where a JSON key should be`, items, i);
            i = this.#resumeAt;
            continue;
          }
          break;
        case S_COLON:
          if (isSpace(c)) break;
          if (c !== 0x3a) {
            state = this.#fail(`Unexpected ${describe(c)} where ':' should be`, items, i);
            i = this.#resumeAt;
            continue;
          }
          state = S_VALUE;
          break;
        case S_AFTER: {
          if (isSpace(c)) break;
          const open = this.#stack[this.#depth - 1];
          if (c === 0x2c) { // ','
            state = open === OBJECT ? S_KEY : S_VALUE;
          } else if ((c === 0x7d && open === OBJECT) || (c === 0x5d && open === ARRAY)) {
            i++;
            state = this.#close(items, i);
            continue;
          } else {
            const want = open === OBJECT ? "',' or '}'" : "',' or ']'";
            state = this.#fail(`Unexpected ${describe(c)} where ${want} should be`, items, i);
            i = this.#resumeAt;
            continue;
          }
          break;
        }
        case S_STRING: {
          // The bulk of most values: skip plain bytes in a tight loop.
          let j = i;
          let b = c;
          while (b !== QUOTE && b !== BACKSLASH && b >= 0x20) {
            if (++j === end) break;
            b = buf[j];
          }
          i = j;
          if (i === end) continue;
          if (b === QUOTE) {
            i++;
            state = this.#keyString ? S_COLON : this.#valueDone(items, i);
            continue;
          }
          if (b === BACKSLASH) {
            state = S_ESCAPE;
            break;
          }
          state = this.#fail(`Unescaped ${describe(b)} inside a JSON string`, items, i);
          i = this.#resumeAt;
          continue;
        }
        case S_ESCAPE:
          if (c === 0x75) { // 'u'
            this.#hexLeft = 4;
            state = S_UNICODE;
          } else if (
            c === QUOTE || c === BACKSLASH || c === 0x2f || c === 0x62 || c === 0x66 ||
            c === 0x6e || c === 0x72 || c === 0x74
          ) {
            state = S_STRING;
          } else {
            state = this.#fail(
              `Invalid escape \\${String.fromCharCode(c)} in a JSON string`,
              items,
              i,
            );
            i = this.#resumeAt;
            continue;
          }
          break;
        case S_UNICODE:
          if (!isHex(c)) {
            state = this.#fail(`Invalid \\u escape: ${describe(c)} is no hex digit`, items, i);
            i = this.#resumeAt;
            continue;
          }
          if (--this.#hexLeft === 0) state = S_STRING;
          break;
        case S_LITERAL:
          if (c !== this.#literal[this.#literalIndex]) {
            const word = new TextDecoder().decode(this.#literal);
            state = this.#fail(`Unexpected ${describe(c)} inside "${word}"`, items, i);
            i = this.#resumeAt;
            continue;
          }
          if (++this.#literalIndex === this.#literal.byteLength) {
            i++;
            state = this.#valueDone(items, i);
            continue;
          }
          break;
        case S_MINUS:
          if (c === 0x30) state = S_ZERO;
          else if (isDigit(c)) state = S_INT;
          else {
            state = this.#fail(`Unexpected ${describe(c)} after '-' in a number`, items, i);
            i = this.#resumeAt;
            continue;
          }
          break;
        case S_INT:
          if (isDigit(c)) break;
          // falls through: the same continuations as after a 0
        case S_ZERO:
          if (c === 0x2e) state = S_DOT;
          else if (c === 0x65 || c === 0x45) state = S_EXP;
          else {
            state = this.#numberDone(c, items, i);
            i = this.#resumeAt;
            continue; // c belongs to what follows the number
          }
          break;
        case S_DOT:
          if (!isDigit(c)) {
            state = this.#fail(`Unexpected ${describe(c)} after '.' in a number`, items, i);
            i = this.#resumeAt;
            continue;
          }
          state = S_FRAC;
          break;
        case S_FRAC:
          if (isDigit(c)) break;
          if (c === 0x65 || c === 0x45) {
            state = S_EXP;
            break;
          }
          state = this.#numberDone(c, items, i);
          i = this.#resumeAt;
          continue;
        case S_EXP:
          if (c === 0x2b || c === 0x2d) state = S_EXP_SIGN;
          else if (isDigit(c)) state = S_EXP_DIGITS;
          else {
            state = this.#fail(`Unexpected ${describe(c)} in a number's exponent`, items, i);
            i = this.#resumeAt;
            continue;
          }
          break;
        case S_EXP_SIGN:
          if (!isDigit(c)) {
            state = this.#fail(`Unexpected ${describe(c)} in a number's exponent`, items, i);
            i = this.#resumeAt;
            continue;
          }
          state = S_EXP_DIGITS;
          break;
        case S_EXP_DIGITS:
          if (isDigit(c)) break;
          state = this.#numberDone(c, items, i);
          i = this.#resumeAt;
          continue;
        case S_SKIP_LINE: {
          const nl = buf.indexOf(LF, i);
          if (nl < 0 || nl >= end) {
            i = end;
          } else {
            i = nl + 1;
            state = S_TOP;
          }
          this.#start = i;
          continue;
        }
      }
      i++;
    }
    this.#pos = i;
    this.#state = state;
    if (state !== S_TOP && state !== S_SKIP_LINE && i - this.#start > this.maxValueBytes) {
      throw new JsonTooLargeError(this.maxValueBytes);
    }
  }

  /**
   * A number ended at byte `c` (at `i`, not part of it): the value is done
   * and `c` is scanned next (from {@link #resumeAt}).
   */
  #numberDone(c: number, items: JsonItem[], i: number): number {
    this.#resumeAt = i;
    if (
      this.#depth === 0 && !isSpace(c) && c !== OBJECT && c !== ARRAY && c !== QUOTE &&
      c !== 0x2d && !LITERALS[c]
    ) {
      // `12x` at top level: the number is not cleanly ended.
      return this.#fail(`Unexpected ${describe(c)} after a number`, items, i);
    }
    return this.#valueDone(items, i);
  }

  /** A value ended just before `i`: emits it at top level, or continues its container. */
  #valueDone(items: JsonItem[], i: number): number {
    if (this.#depth > 0) return S_AFTER;
    if (i - this.#start > this.maxValueBytes) throw new JsonTooLargeError(this.maxValueBytes);
    items.push(this.#decode(this.#start, i));
    this.#start = i;
    return S_TOP;
  }

  /** Closed the innermost container (its close byte ends just before `i`). */
  #close(items: JsonItem[], i: number): number {
    this.#depth--;
    return this.#valueDone(items, i);
  }

  /**
   * A syntax error at byte `i`: reports it, sets {@link #resumeAt} (where
   * the caller's scan goes on) and returns the new state. A value that
   * spans lines resumes at the start of the line where the error showed,
   * which may begin a new value (a truncated line followed by a good one);
   * otherwise the rest of the line is skipped.
   */
  #fail(message: string, items: JsonItem[], i: number): number {
    items.push(new JsonSyntaxError(message));
    this.#depth = 0;
    const lastNl = i > this.#start ? this.#buf.lastIndexOf(LF, i - 1) : -1;
    const spansLines = lastNl >= this.#start;
    this.#resumeAt = this.#start = spansLines ? lastNl + 1 : i;
    return spansLines ? S_TOP : S_SKIP_LINE;
  }

  #decode(start: number, end: number): string {
    return this.#decoder.decode(this.#buf.subarray(start, end));
  }

  async #fill(): Promise<void> {
    const w = { buf: this.#buf, start: this.#start, end: this.#end };
    const skipping = this.#state === S_SKIP_LINE;
    if (!(await readMore(this.#source, w, this.maxValueBytes, skipping))) this.#eof = true;
    this.#pos -= this.#start - w.start; // the kept bytes may have moved to the front
    this.#buf = w.buf;
    this.#start = w.start;
    this.#end = w.end;
  }
}
