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

/**
 * Reads an HTTP message's body up to `limit` bytes, or returns null past
 * it. A declared `Content-Length` within the bound is read in one piece
 * (the runtime holds the message to that length): Deno's body stream
 * allocates a 64 KiB buffer for every pending read, which a slow body keeps
 * alive, 4,000 slow bodies held about 430 MB that no collection returned.
 * Only a body without a length (chunked) goes through the stream.
 */
export async function readBodyAtMost(
  message: Request | Response,
  limit: number,
): Promise<Uint8Array | null> {
  const length = message.headers.get("content-length");
  const declared = length === null ? NaN : Number(length);
  if (declared > limit) {
    await message.body?.cancel();
    return null;
  }
  if (!message.body) return new Uint8Array(0);
  if (declared >= 0) return new Uint8Array(await message.arrayBuffer());
  return await readAtMost(message.body, limit);
}
