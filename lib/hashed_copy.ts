/**
 * Copying a known number of bytes while computing their SHA-256, with the
 * reading of the next chunk, the writing of this one and its hashing all
 * in flight at once: what a file transfer needs on both ends (file to
 * socket, socket to file) to run at the speed of the slower side.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { type Reader, writeAll, type Writer } from "./lines.ts";

/** Big enough that per-operation costs vanish; two of them live per copy. */
export const DEFAULT_CHUNK_BYTES = 1024 * 1024;

/** A fresh streaming SHA-256 (node:crypto's, hardware accelerated where the CPU allows). */
export function sha256(): Hash {
  return createHash("sha256");
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
  /** Called with each chunk's size once it is hashed and handed to the sink. */
  onChunk?: (bytes: number) => void;
  /** Size of each read. Default 1 MiB. */
  chunkBytes?: number;
}

/**
 * Copies `bytes` bytes from `source` to the sink, feeding them to `hash`,
 * and returns how many were copied: fewer only when the source ended
 * early. While one chunk is written and hashed, the next is being read.
 */
export async function copyHashed(
  source: Reader,
  hash: Hash,
  bytes: number,
  options: CopyHashedOptions = {},
): Promise<number> {
  const sink = options.sink ?? null;
  const size = Math.max(1, Math.min(options.chunkBytes ?? DEFAULT_CHUNK_BYTES, bytes));
  const buffers = [new Uint8Array(size), new Uint8Array(size)];
  let copied = 0;
  let current = 0;
  let writing: Promise<void> = Promise.resolve();
  let reading = bytes > 0 ? guard(readFull(source, buffers[0], size)) : Promise.resolve(0);
  while (copied < bytes) {
    const want = Math.min(size, bytes - copied);
    const n = await reading;
    if (n === 0) break;
    const chunk = buffers[current].subarray(0, n);
    await writing; // the other buffer is free once its write is done
    copied += n;
    current ^= 1;
    const more = n === want && copied < bytes;
    if (more) {
      reading = guard(readFull(source, buffers[current], Math.min(size, bytes - copied)));
    }
    if (sink) writing = guard(writeAll(sink, chunk));
    hash.update(chunk); // runs while the read and the write are in flight
    options.onChunk?.(n);
    if (!more) break;
  }
  await writing;
  return copied;
}

/** Marks a promise as handled, so that a failure surfaces where it is awaited, not earlier. */
function guard<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}
