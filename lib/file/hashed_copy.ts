/**
 * Copying a known number of bytes while computing their SHA-256, with the
 * reading of the next chunk, the writing of this one and its hashing all
 * in flight at once: what a file transfer needs on both ends (file to
 * socket, socket to file) to run at the speed of the slower side.
 *
 * Chunks are 256 KiB, eight in flight: small enough that a chunk is still
 * in the CPU cache when it is hashed and copied into the page cache or the
 * socket (with 1 MiB chunks, the receiver spent twice the CPU time, most
 * of it in the kernel's copy into the page cache), big enough that
 * per-operation costs vanish. The hash runs on this thread, between I/O
 * calls: hashing on a worker thread from shared memory was tried and
 * measured slower on the 2-core machines netkit is benchmarked on (the
 * worker competes for the same cores, costs 0.2 s more CPU per GiB, and
 * each chunk waits for a message round trip).
 *
 * The file end is read or written with the synchronous calls, on this
 * thread, right after the socket end: the asynchronous ones run on a
 * thread pool, where the chunk is no longer in this core's cache, and
 * `perf` showed half of the receiver's time in the kernel's copy into the
 * page cache; synchronous writes took 1-2 s of CPU per GiB off the
 * receiver and synchronous reads 0.1-0.3 s off the sender.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { type Reader, writeAll, type Writer } from "../io/lines.ts";
import { writeAllSync } from "../io/print.ts";

/** Fits the CPU cache with the other chunks in flight; big enough that per-operation costs vanish. */
export const DEFAULT_CHUNK_BYTES = 256 * 1024;
/** Chunks in flight (2 MiB): one being read, the others being written and hashed. */
const BUFFERS = 8;

/** A fresh streaming SHA-256 on this thread (node:crypto's, hardware accelerated). */
export function sha256(): Hash {
  return createHash("sha256");
}

/** A file's synchronous side, which {@link copyHashed} prefers when the source or sink has it. */
interface SyncFile {
  readSync(p: Uint8Array): number | null;
  writeSync(p: Uint8Array): number;
}

function isSyncFile(x: unknown): x is SyncFile {
  return typeof (x as SyncFile).readSync === "function" &&
    typeof (x as SyncFile).writeSync === "function";
}

/** Reads until `want` bytes are in `buf` or the source ends; returns how many came. */
export async function readFull(source: Reader, buf: Uint8Array, want: number): Promise<number> {
  let filled = 0;
  if (isSyncFile(source)) {
    while (filled < want) {
      const n = source.readSync(buf.subarray(filled, want));
      if (n === null) break;
      filled += n;
    }
    return filled;
  }
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
  /** Size of each read. Default 256 KiB. */
  chunkBytes?: number;
}

/**
 * Copies `bytes` bytes from `source` to the sink, feeding them to `hash`,
 * and returns how many were copied: fewer only when the source ended
 * early. While chunks are written and hashed, the next is being read.
 */
export async function copyHashed(
  source: Reader,
  hash: Hash,
  bytes: number,
  options: CopyHashedOptions = {},
): Promise<number> {
  const sink = options.sink ?? null;
  const size = Math.max(1, Math.min(options.chunkBytes ?? DEFAULT_CHUNK_BYTES, bytes));
  const count = Math.min(BUFFERS, Math.ceil(bytes / size));
  const buffers = Array.from({ length: count }, () => new Uint8Array(size));
  // busy[i] settles once buffer i is written and may be reused.
  const busy: Promise<void>[] = buffers.map(() => Promise.resolve());
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
    if (sink && isSyncFile(sink)) writeAllSync(sink, chunk); // while it is in this core's cache
    else if (sink) writing = guard(writing.then(() => writeAll(sink, chunk)));
    hash.update(chunk); // runs while the read and the writes are in flight
    busy[current] = writing;
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
