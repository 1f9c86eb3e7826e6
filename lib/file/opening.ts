/**
 * Reading what a sender says first, and telling netkit's opening lines
 * (`token`, `key`, `FILE <size> <name>`) from seed 004's bare file name,
 * which comes without a newline and waits for `ok`.
 *
 * @module
 */
import type { Reader } from "../io/lines.ts";
import { deadline } from "../io/deadline.ts";
import { HEADER_WORD, KEY_WORD, MAX_OPENING_BYTES, TOKEN_WORD } from "./file_protocol.ts";

/**
 * How long bytes that could still become netkit's opening (`FIL`, `key`,
 * a header without its newline) wait for the rest before they are taken
 * as a bare name: netkit's sender writes its opening at once.
 */
export const BARE_NAME_GRACE_MS = 1_000;

/** What a sender said first. */
export type RawOpening =
  /** Netkit's lines, up to and including the header; `extra` counts bytes sent after it. */
  | { kind: "lines"; lines: string[]; extra: number }
  /** Anything else: seed 004's bare name, or bytes that are no protocol; `content` reads on. */
  | { kind: "bare"; bytes: Uint8Array; content: Reader }
  /** The sender closed without a byte. */
  | { kind: "none" }
  /** Over {@link MAX_OPENING_BYTES} without a header. */
  | { kind: "too-long" };

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const WORDS = [HEADER_WORD, TOKEN_WORD, KEY_WORD].map((w) => encoder.encode(w + " "));
const NEWLINE = 0x0a;

/** Whether `bytes` start with `word`, or are a beginning of it. */
function startsLike(bytes: Uint8Array, word: Uint8Array): boolean {
  const n = Math.min(bytes.byteLength, word.byteLength);
  for (let i = 0; i < n; i++) if (bytes[i] !== word[i]) return false;
  return true;
}

type Verdict =
  | { done: true; opening: "lines"; lines: string[]; extra: number }
  | { done: true; opening: "bare" }
  | { done: false };

/** Classifies the bytes so far: a complete opening, a bare name, or not yet known. */
function classify(bytes: Uint8Array): Verdict {
  const lines: string[] = [];
  let start = 0;
  for (let nl = bytes.indexOf(NEWLINE); nl >= 0; nl = bytes.indexOf(NEWLINE, start)) {
    const line = bytes.subarray(start, nl);
    if (!WORDS.some((w) => startsLike(line, w) && line.byteLength >= w.byteLength)) {
      return { done: true, opening: "bare" };
    }
    lines.push(decoder.decode(line).replace(/\r$/, ""));
    start = nl + 1;
    if (startsLike(line, WORDS[0])) {
      return { done: true, opening: "lines", lines, extra: bytes.byteLength - start };
    }
  }
  const tail = bytes.subarray(start);
  return WORDS.some((w) => startsLike(tail, w)) ? { done: false } : { done: true, opening: "bare" };
}

/** A reader that first delivers the bytes of a read already under way into `buf`. */
class AfterPending implements Reader {
  #pending: Promise<number | null> | null;
  #buf: Uint8Array;
  #rest: Uint8Array | null = null;
  #source: Reader;

  constructor(pending: Promise<number | null>, buf: Uint8Array, source: Reader) {
    this.#pending = pending;
    this.#buf = buf;
    this.#source = source;
  }

  async read(p: Uint8Array): Promise<number | null> {
    if (this.#pending) {
      const n = await this.#pending;
      this.#pending = null;
      if (n === null) return null;
      this.#rest = this.#buf.subarray(0, n);
    }
    if (this.#rest && this.#rest.byteLength > 0) {
      const n = Math.min(p.byteLength, this.#rest.byteLength);
      p.set(this.#rest.subarray(0, n));
      this.#rest = this.#rest.subarray(n);
      return n;
    }
    return this.#source.read(p);
  }
}

const GRACE_OVER = Symbol("grace over");

/**
 * Reads a sender's first bytes: netkit's opening lines once the header's
 * newline has come, or, as soon as the bytes cannot be netkit's (or after
 * {@link BARE_NAME_GRACE_MS} without the rest), a bare name.
 */
export async function readOpening(
  source: Reader,
  graceMs = BARE_NAME_GRACE_MS,
): Promise<RawOpening> {
  const buf = new Uint8Array(MAX_OPENING_BYTES);
  let filled = 0;
  while (true) {
    const verdict = classify(buf.subarray(0, filled));
    if (verdict.done) {
      if (verdict.opening === "lines") {
        return { kind: "lines", lines: verdict.lines, extra: verdict.extra };
      }
      return { kind: "bare", bytes: buf.slice(0, filled), content: source };
    }
    if (filled === buf.byteLength) return { kind: "too-long" };
    const room = new Uint8Array(buf.byteLength - filled);
    const reading = source.read(room);
    const n = filled === 0 ? await reading : await graceOrRead(reading, graceMs);
    if (n === GRACE_OVER) {
      // The read stays under way; the content reader takes its bytes.
      return {
        kind: "bare",
        bytes: buf.slice(0, filled),
        content: new AfterPending(reading, room, source),
      };
    }
    if (n === null) {
      if (filled === 0) return { kind: "none" };
      const ended = classify(Uint8Array.of(...buf.subarray(0, filled), NEWLINE));
      if (ended.done && ended.opening === "lines") {
        return { kind: "lines", lines: ended.lines, extra: 0 };
      }
      return { kind: "bare", bytes: buf.slice(0, filled), content: source };
    }
    buf.set(room.subarray(0, n), filled);
    filled += n;
  }
}

async function graceOrRead(
  reading: Promise<number | null>,
  ms: number,
): Promise<number | null | typeof GRACE_OVER> {
  try {
    return await deadline(reading, Math.max(1, ms), "grace over");
  } catch (error) {
    if (error instanceof Deno.errors.TimedOut) return GRACE_OVER;
    throw error;
  }
}
