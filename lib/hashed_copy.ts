/**
 * Copying a known number of bytes while computing their SHA-256, with the
 * reading of the next chunk, the writing of this one and its hashing all
 * in flight at once: what a file transfer needs on both ends (file to
 * socket, socket to file) to run at the speed of the slower side. The hash
 * can run on a worker thread ({@link Sha256Worker}), reading the chunks
 * from shared memory, so that it never holds up the I/O.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { type Reader, writeAll, type Writer } from "./lines.ts";

/** Big enough that per-operation costs vanish. */
export const DEFAULT_CHUNK_BYTES = 1024 * 1024;
/** Chunks in flight: one being read, the others being written and hashed. */
const BUFFERS = 4;

/** A fresh streaming SHA-256 on this thread (node:crypto's, hardware accelerated). */
export function sha256(): Hash {
  return createHash("sha256");
}

/** A running SHA-256, on this thread or on a worker. */
export interface Sha256 {
  /** Feeds a chunk; it must stay unchanged until the returned promise settles. */
  update(chunk: Uint8Array): void | Promise<void>;
  /** The digest of everything fed, as lowercase hex; ends the hash. */
  hex(): string | Promise<string>;
  /** Whether chunks must live in a `SharedArrayBuffer`. */
  readonly shared?: boolean;
}

/** SHA-256 on this thread. */
export class Sha256Local implements Sha256, Disposable {
  #hash = sha256();
  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
  }
  hex(): string {
    return this.#hash.digest("hex");
  }
  [Symbol.dispose](): void {}
}

/** From this many bytes on, hashing on a worker pays for starting one (some 20 ms). */
export const WORKER_MIN_BYTES = 16 * 1024 * 1024;

/** A SHA-256 for `bytes` bytes: on a worker for big files, on this thread for small ones. */
export function newSha256(bytes: number): Sha256 & Disposable {
  return bytes >= WORKER_MIN_BYTES ? new Sha256Worker() : new Sha256Local();
}

/** The worker's code: one hash, fed views of shared buffers, answering each message. */
const WORKER_SOURCE = `
import { createHash } from "node:crypto";
const hash = createHash("sha256");
self.onmessage = ({ data }) => {
  try {
    if (data === "hex") {
      self.postMessage({ hex: hash.digest("hex") });
    } else {
      hash.update(new Uint8Array(data.buffer, data.offset, data.length));
      self.postMessage({});
    }
  } catch (error) {
    self.postMessage({ error: String(error) });
  }
};
`;
let workerUrl: string | null = null;

/**
 * SHA-256 on a worker thread, fed chunks that live in a
 * `SharedArrayBuffer` (no copies): the main thread keeps moving bytes
 * while another core hashes. Dispose it to end the worker.
 */
export class Sha256Worker implements Sha256, Disposable {
  readonly shared = true;
  #worker: Worker;
  #waiting: Array<{ resolve: (data: { hex?: string }) => void; reject: (e: Error) => void }> = [];

  constructor() {
    workerUrl ??= URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
    this.#worker = new Worker(workerUrl, { type: "module" });
    this.#worker.onmessage = ({ data }) => {
      const waiter = this.#waiting.shift();
      if (data.error) waiter?.reject(new Error(`SHA-256 worker: ${data.error}`));
      else waiter?.resolve(data);
    };
    this.#worker.onerror = (event) => {
      event.preventDefault();
      for (const waiter of this.#waiting.splice(0)) {
        waiter.reject(new Error(`SHA-256 worker: ${event.message}`));
      }
    };
  }

  #ask(message: unknown): Promise<{ hex?: string }> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      this.#worker.postMessage(message);
    });
  }

  async update(chunk: Uint8Array): Promise<void> {
    if (!(chunk.buffer instanceof SharedArrayBuffer)) {
      throw new TypeError("Sha256Worker.update() needs a view of a SharedArrayBuffer");
    }
    await this.#ask({ buffer: chunk.buffer, offset: chunk.byteOffset, length: chunk.byteLength });
  }

  async hex(): Promise<string> {
    return (await this.#ask("hex")).hex!;
  }

  [Symbol.dispose](): void {
    this.#worker.terminate();
  }
}

/** Reads until `want` bytes are in `buf` or the source ends; returns how many came. */
export async function readFull(source: Reader, buf: Uint8Array, want: number): Promise<number> {
  let filled = 0;
  while (filled < want) {
    const n = await source.read(buf.subarray(filled, want));
    if (n === null) break;
    filled += n;
  }
  return filled;
}

/** Options for {@link copyHashed}. */
export interface CopyHashedOptions {
  /** Where bytes go; null only hashes them. Default null. */
  sink?: Writer | null;
  /** Called with each chunk's size once it is read. */
  onChunk?: (bytes: number) => void;
  /** Size of each read. Default 1 MiB. */
  chunkBytes?: number;
}

/**
 * Copies `bytes` bytes from `source` to the sink, feeding them to `hash`,
 * and returns how many were copied: fewer only when the source ended
 * early. While chunks are written and hashed, the next is being read.
 */
export async function copyHashed(
  source: Reader,
  hash: Hash | Sha256,
  bytes: number,
  options: CopyHashedOptions = {},
): Promise<number> {
  const sink = options.sink ?? null;
  const size = Math.max(1, Math.min(options.chunkBytes ?? DEFAULT_CHUNK_BYTES, bytes));
  const count = bytes > size ? BUFFERS : 1;
  const memory = "shared" in hash && hash.shared
    ? new SharedArrayBuffer(size * count)
    : new ArrayBuffer(size * count);
  const buffers = Array.from({ length: count }, (_, i) => new Uint8Array(memory, i * size, size));
  // busy[i] settles once buffer i is written and hashed, and may be reused.
  const busy: Promise<unknown>[] = buffers.map(() => Promise.resolve());
  let writing: Promise<void> = Promise.resolve(); // writes go out in order, one at a time
  let copied = 0;
  let current = 0;
  let reading = bytes > 0 ? guard(readFull(source, buffers[0], size)) : Promise.resolve(0);
  while (copied < bytes) {
    const want = Math.min(size, bytes - copied);
    const n = await reading;
    if (n === 0) break;
    const chunk = buffers[current].subarray(0, n);
    copied += n;
    const more = n === want && copied < bytes;
    const next = (current + 1) % count;
    if (more) {
      const free = busy[next];
      const left = Math.min(size, bytes - copied);
      reading = guard(free.then(() => readFull(source, buffers[next], left)));
    }
    if (sink) writing = guard(writing.then(() => writeAll(sink, chunk)));
    const hashed = hash.update(chunk); // on this thread: runs while the I/O is in flight
    busy[current] = guard(Promise.all([writing, hashed instanceof Promise ? hashed : null]));
    options.onChunk?.(n);
    current = next;
    if (!more) break;
  }
  await Promise.all(busy);
  return copied;
}

/** Marks a promise as handled, so that a failure surfaces where it is awaited, not earlier. */
function guard<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}
