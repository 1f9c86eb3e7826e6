/**
 * Bounded line framing: bytes to lines and lines to bytes.
 *
 * Lines end with `\n` or `\r\n` (either may be split across reads); UTF-8
 * characters split across reads are decoded whole; a final line without a
 * newline is still a line. A line longer than `maxLineBytes` raises
 * {@link LineTooLongError} instead of buffering forever.
 *
 * @module
 */
import { INITIAL_BUFFER_BYTES, type Reader, readMore } from "./read_buffer.ts";

export type { Reader };

/** The default bound on one line, in bytes, newline excluded. */
export const DEFAULT_MAX_LINE_BYTES = 64 * 1024;
const LF = 0x0a;
const CR = 0x0d;

/** Anything that writes bytes and may write fewer than it was given. */
export interface Writer {
  write(p: Uint8Array): Promise<number>;
}

/**
 * Raised when a line exceeds its bound. Reading again skips the rest of
 * that line and goes on with the next, so a server may answer with an
 * error and keep the connection.
 */
export class LineTooLongError extends RangeError {
  /** The bound that was exceeded, in bytes. */
  readonly maxLineBytes: number;
  constructor(maxLineBytes: number) {
    super(`Line exceeds the limit of ${maxLineBytes} bytes`);
    this.name = "LineTooLongError";
    this.maxLineBytes = maxLineBytes;
  }
}

/** Options for {@link LineReader}. */
export interface LineReaderOptions {
  /** Longest accepted line in bytes, newline excluded. Default 65536. */
  maxLineBytes?: number;
  /** Size of the first read buffer; it grows while reads fill it. Default 2048. */
  initialBufferBytes?: number;
}

/** Adapts a byte stream to the {@link Reader} interface, copying chunks as asked. */
class StreamReader implements Reader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #rest: Uint8Array | null = null;
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }
  async read(p: Uint8Array): Promise<number | null> {
    let chunk = this.#rest;
    this.#rest = null;
    while (chunk === null || chunk.byteLength === 0) {
      const { value, done } = await this.#reader.read();
      if (done) return null;
      chunk = value;
    }
    const n = Math.min(p.byteLength, chunk.byteLength);
    p.set(chunk.subarray(0, n));
    if (n < chunk.byteLength) this.#rest = chunk.subarray(n);
    return n;
  }
}

/** A {@link Reader} over a reader or a byte stream (copying chunks as asked). */
export function toReader(source: Reader | ReadableStream<Uint8Array>): Reader {
  return source instanceof ReadableStream ? new StreamReader(source) : source;
}

/**
 * Splits a byte source into lines, a batch at a time.
 *
 * `readLines()` returns every complete line that one read made available,
 * so a server can answer them all with one write; iterating yields lines
 * one by one. The read buffer starts small and grows only while the peer
 * keeps it full, so idle connections stay cheap.
 */
export class LineReader {
  readonly maxLineBytes: number;
  #source: Reader;
  #decoder: TextDecoder | null = null; // made on first use: idle readers stay small
  #buf: Uint8Array;
  #start = 0; // first byte of the unfinished line
  #end = 0; // end of the bytes read so far
  #eof = false;
  #skipping = false; // inside an over-long line: drop bytes up to its newline

  constructor(source: Reader | ReadableStream<Uint8Array>, options: LineReaderOptions = {}) {
    this.#source = source instanceof ReadableStream ? new StreamReader(source) : source;
    this.maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    this.#buf = new Uint8Array(Math.max(16, options.initialBufferBytes ?? INITIAL_BUFFER_BYTES));
  }

  /** Bytes received but not yet returned as part of a line. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /**
   * Returns the next batch of complete lines, without their line endings,
   * or null at the end of the stream. A final unterminated line is
   * returned last. Throws {@link LineTooLongError} on an over-long line.
   */
  async readLines(): Promise<string[] | null> {
    while (true) {
      const lines = this.#takeLines();
      if (lines.length > 0) return lines;
      if (this.#eof) {
        const last = this.#takeRest();
        return last === null ? null : [last];
      }
      await this.#fill();
    }
  }

  /**
   * Like {@link readLines} without decoding, for servers that need not
   * look at most lines: calls `each(buf, start, end)` for every complete
   * line of the next batch (line ending excluded; the bytes stay valid only
   * during the call) and returns how many lines it passed, or null at the
   * end of the stream. When `each` returns false the batch ends there.
   */
  async readLineBytes(
    each: (buf: Uint8Array, start: number, end: number) => boolean | void,
  ): Promise<number | null> {
    while (true) {
      const count = this.#eachLine(each);
      if (count > 0) return count;
      if (this.#eof) {
        this.#skip();
        if (this.#end === this.#start) return null;
        if (this.#end - this.#start > this.maxLineBytes) {
          this.#start = this.#end;
          throw new LineTooLongError(this.maxLineBytes);
        }
        const start = this.#start;
        this.#start = this.#end;
        each(this.#buf, start, this.#end);
        return 1;
      }
      await this.#fill();
    }
  }

  /** Returns the next line, or null at the end of the stream. */
  async readLine(): Promise<string | null> {
    const line = this.#takeOne();
    if (line !== undefined) return line;
    while (true) {
      if (this.#eof) return this.#takeRest();
      await this.#fill();
      const next = this.#takeOne();
      if (next !== undefined) return next;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<string> {
    while (true) {
      const batch = await this.readLines();
      if (batch === null) return;
      yield* batch;
    }
  }

  /** The unterminated last line at end of stream, or null if there is none. */
  #takeRest(): string | null {
    this.#skip();
    if (this.#end === this.#start) return null;
    if (this.#end - this.#start > this.maxLineBytes) {
      this.#start = this.#end;
      throw new LineTooLongError(this.maxLineBytes);
    }
    const last = this.#decode(this.#start, this.#end);
    this.#start = this.#end;
    return last;
  }

  #takeOne(): string | undefined {
    if (!this.#skip()) return undefined;
    const nl = this.#buf.indexOf(LF, this.#start);
    if (nl < 0 || nl >= this.#end) {
      this.#checkPending();
      return undefined;
    }
    const start = this.#start;
    this.#start = nl + 1;
    return this.#lineAt(start, nl);
  }

  #takeLines(): string[] {
    const lines: string[] = [];
    if (!this.#skip()) return lines;
    const buf = this.#buf;
    while (this.#start < this.#end) {
      const nl = buf.indexOf(LF, this.#start);
      if (nl < 0 || nl >= this.#end) break;
      // Hand out the good lines first; the over-long one throws on the next call.
      if (lines.length > 0 && this.#contentLength(this.#start, nl) > this.maxLineBytes) break;
      const start = this.#start;
      this.#start = nl + 1;
      lines.push(this.#lineAt(start, nl));
    }
    if (lines.length === 0) this.#checkPending();
    return lines;
  }

  /** Length of the line from `start` to the `\n` at `nl`, without a `\r` before it. */
  #contentLength(start: number, nl: number): number {
    return nl > start && this.#buf[nl - 1] === CR ? nl - 1 - start : nl - start;
  }

  #eachLine(each: (buf: Uint8Array, start: number, end: number) => boolean | void): number {
    let count = 0;
    if (!this.#skip()) return count;
    const buf = this.#buf;
    while (this.#start < this.#end) {
      const nl = buf.indexOf(LF, this.#start);
      if (nl < 0 || nl >= this.#end) break;
      const start = this.#start;
      const length = this.#contentLength(start, nl);
      if (length > this.maxLineBytes) {
        if (count > 0) return count; // the good lines first; it throws on the next call
        this.#start = nl + 1;
        throw new LineTooLongError(this.maxLineBytes);
      }
      this.#start = nl + 1;
      count++;
      if (each(buf, start, start + length) === false) return count;
    }
    if (count === 0) this.#checkPending();
    return count;
  }

  /** Decodes the line from `start` to the `\n` at `nl` (already consumed), dropping a `\r`. */
  #lineAt(start: number, nl: number): string {
    const length = this.#contentLength(start, nl);
    if (length > this.maxLineBytes) throw new LineTooLongError(this.maxLineBytes);
    return this.#decode(start, start + length);
  }

  /** Fails as soon as the unfinished line cannot fit the bound any more. */
  #checkPending(): void {
    const pending = this.#end - this.#start;
    if (pending <= this.maxLineBytes) return;
    // One byte more is allowed if it is the "\r" of a "\r\n" still to come.
    if (pending === this.maxLineBytes + 1 && this.#buf[this.#end - 1] === CR) return;
    this.#start = this.#end;
    this.#skipping = true;
    throw new LineTooLongError(this.maxLineBytes);
  }

  /** While skipping an over-long line, drops bytes up to its newline; false if still inside it. */
  #skip(): boolean {
    if (!this.#skipping) return true;
    const nl = this.#buf.indexOf(LF, this.#start);
    if (nl < 0 || nl >= this.#end) {
      this.#start = this.#end;
      return false;
    }
    this.#start = nl + 1;
    this.#skipping = false;
    return true;
  }

  #decode(start: number, end: number): string {
    if (start === end) return "";
    this.#decoder ??= new TextDecoder();
    return this.#decoder.decode(this.#buf.subarray(start, end));
  }

  async #fill(): Promise<void> {
    // The pending line may be one byte over the bound: the "\r" of a "\r\n".
    const w = { buf: this.#buf, start: this.#start, end: this.#end };
    if (!(await readMore(this.#source, w, this.maxLineBytes + 1, this.#skipping))) {
      this.#eof = true;
    }
    this.#buf = w.buf;
    this.#start = w.start;
    this.#end = w.end;
  }
}

/** Yields the lines of a byte source one by one; see {@link LineReader}. */
export function readLines(
  source: Reader | ReadableStream<Uint8Array>,
  options: LineReaderOptions = {},
): AsyncIterable<string> {
  return new LineReader(source, options);
}

/** Writes all of `data`, looping over partial writes. */
export async function writeAll(writer: Writer, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.byteLength) {
    offset += await writer.write(data.subarray(offset));
  }
}

const encoder = new TextEncoder();

/** Encodes lines as UTF-8, each followed by `\n`, in one buffer. */
export function encodeLines(lines: readonly string[]): Uint8Array {
  if (lines.length === 1) return encoder.encode(lines[0] + "\n");
  return encoder.encode(lines.join("\n") + "\n");
}

/** Writes lines, batched into one write, with a full-write loop. */
export function writeLines(writer: Writer, lines: readonly string[]): Promise<void> {
  return writeAll(writer, encodeLines(lines));
}

/**
 * Queues lines and writes everything queued in one write, one write at a
 * time, so that replies to many requests leave in few packets and never
 * interleave. `write()` resolves when the line has been written.
 */
export class LineWriter {
  #writer: Writer;
  #queue: string[] = [];
  #flushing: Promise<void> | null = null;

  constructor(writer: Writer) {
    this.#writer = writer;
  }

  /** Lines queued and not yet handed to the writer. */
  get pending(): number {
    return this.#queue.length;
  }

  /** Queues one line (without its newline) and resolves once it is written. */
  write(line: string): Promise<void> {
    this.#queue.push(line);
    return this.flush();
  }

  /** Writes everything queued; resolves when the queue is empty. */
  flush(): Promise<void> {
    this.#flushing ??= this.#drain().finally(() => this.#flushing = null);
    return this.#flushing;
  }

  async #drain(): Promise<void> {
    // Let every line queued in this turn of the event loop join the batch.
    await Promise.resolve();
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      await writeLines(this.#writer, batch);
    }
  }
}
