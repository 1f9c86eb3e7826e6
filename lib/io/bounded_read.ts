/**
 * Reading a whole stream into memory up to a bound, for HTTP bodies (a
 * fetched page, a JSON-RPC request): what passes the bound is never kept,
 * the read stops there and the stream is cancelled.
 *
 * @module
 */

/**
 * Reads `stream` to its end into one buffer, or returns null once more
 * than `limit` bytes have come (the stream is then cancelled).
 */
export async function readAtMost(
  stream: ReadableStream<Uint8Array>,
  limit: number,
): Promise<Uint8Array | null> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.byteLength;
    if (size > limit) return null; // leaving the loop cancels the stream
    chunks.push(chunk);
  }
  if (chunks.length === 1) return chunks[0];
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
